#!/usr/bin/env bash
# Native stack control for product-views: Bun, PostgreSQL, Apache Kafka (KRaft), API and worker,
# with no Docker engine. Everything it downloads or writes lives in .cache/ and .data/ (both ignored).
#
#   scripts/stack.sh up        infrastructure + migrations + API + worker, in the background
#   scripts/stack.sh infra     infrastructure + migrations only (what the tests need)
#   scripts/stack.sh down      stop what `up` started (API, worker, Kafka, Postgres)
#   scripts/stack.sh status    what runs, on which port
#   scripts/stack.sh deps      Bun and the npm dependencies only (what `make check` needs)
#   scripts/stack.sh restart-app   restart API and worker only
#   scripts/stack.sh start|stop kafka|postgres|api|worker   one component (used by the fault tests)
#   scripts/stack.sh kill kafka|postgres    SIGKILL, no clean shutdown (fault tests)
#   scripts/stack.sh start|stop|kill kafka N   node N only, with KAFKA_NODES=3 (three KRaft nodes, replication 3)
#   scripts/stack.sh wipe kafka             stop Kafka and delete its data: every topic and offset is gone
#   scripts/stack.sh browser   Chromium for the browser tests (Debian package, as root), or a note that they skip
#   scripts/stack.sh apt <package...>   Debian packages another script needs (as root; waits for apt's lock)
#
# DATABASE_URL / KAFKA_BROKERS pointing at reachable servers make it use those and start none of its own.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="$ROOT/.cache"
DATA="${PV_DATA_DIR:-$ROOT/.data}"
LOGS="$DATA/logs"
RUN="$DATA/run"
BUN_VERSION=$(sed -n 's/.*"packageManager": *"bun@\([^"]*\)".*/\1/p' "$ROOT/package.json")
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/scripts/kafka/pom.xml")

# Set by the user: use those servers and start none of our own.
EXT_DB="${DATABASE_URL:-}"
EXT_KAFKA="${KAFKA_BROKERS:-}"
# Whether the user chose the port: if not, and 5432 is taken by another PostgreSQL (Debian's package starts its
# own cluster there on install), ours moves to the next free port, remembered in $RUN/pg.port.
PG_PORT_CHOSEN="${PG_PORT:+yes}"
PG_PORT="${PG_PORT:-5432}"
PG_DB="${PG_DB:-product_views}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP="${KAFKA_HEAP:-768m}"
PORT="${PORT:-8080}"
WORKER_METRICS_PORT="${WORKER_METRICS_PORT:-9464}"

log() { printf '\033[1m[stack]\033[0m %s\n' "$*" >&2; }

# long_step <what> <command...>: for steps that download or build for minutes (Bun, npm packages, the Kafka jars):
# says it started, prints a line every 20 s while it runs, and how long it took.
long_step() {
  local what=$1; shift
  local t0=$SECONDS
  log "$what (can take a few minutes)"
  ( while sleep 20; do log "  … still $what ($((SECONDS - t0)) s)"; done ) &
  local ticker=$!
  local rc=0
  "$@" || rc=$?
  kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
  [ $rc -eq 0 ] && log "  done in $((SECONDS - t0)) s"
  return $rc
}
die() { printf '\033[31m[stack] %s\033[0m\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
[ -z "$PG_PORT_CHOSEN" ] && [ -f "$RUN/pg.port" ] && PG_PORT=$(cat "$RUN/pg.port")

pid_alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

wait_for() { # wait_for <seconds> <description> <command...>
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# Waits (bounded) for another apt (unattended-upgrades, a second suite installing Chromium) instead of failing on
# its lock: two suites started at once on a fresh machine skipped the browser tests that way.
apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"; }

apt_install() {
  is_root || die "missing: $*. Install them (Debian: sudo apt-get install -y $*) and run again."
  command -v apt-get >/dev/null || die "missing: $*; no apt-get here, install them with your package manager."
  log "installing $* from Debian packages"
  if [ ! -f "$CACHE/.apt-updated" ]; then
    apt_get update -qq >/dev/null
    mkdir -p "$CACHE" && touch "$CACHE/.apt-updated"
  fi
  apt_get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ---------------------------------------------------------------- Bun and dependencies
ensure_bun() {
  local local_bin="$CACHE/bun/node_modules/.bin"
  if [ -x "$local_bin/bun" ]; then export PATH="$local_bin:$PATH"; fi
  if command -v bun >/dev/null && [ "$(bun --version)" = "$BUN_VERSION" ]; then return; fi
  command -v npm >/dev/null || die "neither bun $BUN_VERSION nor npm found: install Node.js + npm (or bun $BUN_VERSION)."
  mkdir -p "$CACHE/bun"
  long_step "installing bun $BUN_VERSION from the npm registry into .cache/bun" \
    npm install --prefix "$CACHE/bun" --no-save --no-audit --no-fund --loglevel=error "bun@$BUN_VERSION" >/dev/null
  export PATH="$local_bin:$PATH"
  [ "$(bun --version)" = "$BUN_VERSION" ] || die "bun $BUN_VERSION did not install"
}

# The producer and the consumer call librdkafka's C API through bun:ffi (src/kafka/rdkafka.ts): a pinned build of it
# in .cache/librdkafka (scripts/librdkafka.sh says where from), unless LIBRDKAFKA_PATH names another.
ensure_librdkafka() {
  [ -z "${LIBRDKAFKA_PATH:-}" ] || return 0
  [ -s "$CACHE/librdkafka/librdkafka.so.1" ] && [ "$(cat "$CACHE/librdkafka/VERSION" 2>/dev/null)" = "$(sed -n 's/^VERSION=\([^ ]*\).*/\1/p' "$ROOT/scripts/librdkafka.sh")" ] && return 0
  long_step "downloading librdkafka (Confluent's build, from PyPI) into .cache/librdkafka" \
    bash "$ROOT/scripts/librdkafka.sh" "$CACHE/librdkafka" || die "librdkafka could not be downloaded; see above"
}

ensure_deps() {
  ensure_librdkafka
  if [ ! -d "$ROOT/node_modules" ] || [ "$ROOT/bun.lock" -nt "$ROOT/node_modules/.installed" ]; then
    long_step "installing npm dependencies (bun install --frozen-lockfile)" \
      sh -c "cd '$ROOT' && bun install --frozen-lockfile >/dev/null"
    touch "$ROOT/node_modules/.installed"
  fi
}

# ---------------------------------------------------------------- PostgreSQL
pg_bindir() {
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# Postgres refuses to run as root; as root the cluster belongs to the postgres user, and it must be able to
# reach the data folder (a checkout under /root is not reachable, so that case gets a folder of its own).
pg_datadir() {
  local dir="$DATA/pg"
  if is_root; then
    mkdir -p "$DATA"
    if ! runuser -u postgres -- test -x "$DATA" 2>/dev/null; then
      # One folder per data directory (the tests' stack has its own); the default keeps its first name.
      local key="$ROOT"; [ "$DATA" = "$ROOT/.data" ] || key="$DATA"
      dir="/var/lib/product-views/$(printf '%s' "$key" | md5sum | cut -c1-12)/pg"
    fi
  fi
  printf '%s' "$dir"
}

as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

# The server writes its own log, as the postgres user: next to the data folder when that had to move out of a
# folder postgres cannot reach (a checkout under /root), linked from $LOGS so `make logs` still finds it.
pg_logfile() {
  local dir; dir=$(pg_datadir)
  if [ "$dir" = "$DATA/pg" ]; then printf '%s' "$LOGS/postgres.log"; else printf '%s' "$(dirname "$dir")/postgres.log"; fi
}

# Picks our port when the user did not: 5432, or the first free one after it if another server holds 5432.
choose_pg_port() {
  port_open 127.0.0.1 "$PG_PORT" || return 0
  [ -z "$PG_PORT_CHOSEN" ] || die "port $PG_PORT is in use by another process: stop it, or set PG_PORT (or DATABASE_URL to use that server)"
  local p
  for p in $(seq $((PG_PORT + 1)) $((PG_PORT + 20))); do
    if ! port_open 127.0.0.1 "$p"; then
      log "postgres: port $PG_PORT is taken by another server (Debian's own cluster?); ours runs on $p (kept in $RUN/pg.port; set PG_PORT or DATABASE_URL to choose)"
      PG_PORT=$p
      mkdir -p "$RUN"; echo "$p" >"$RUN/pg.port"
      return 0
    fi
  done
  die "ports $PG_PORT..$((PG_PORT + 20)) are all in use: set PG_PORT or DATABASE_URL"
}

# The HyperLogLog extension the unique-viewer sketches need (sql/0004_unique_viewers.sql), for the server in $1.
ensure_hll() {
  local share major
  share=$("$1/pg_config" --sharedir 2>/dev/null) || share=""
  [ -n "$share" ] && [ -f "$share/extension/hll.control" ] && return
  major=$("$1/postgres" --version | sed -n 's/^[^0-9]*\([0-9][0-9]*\).*/\1/p')
  apt_install "postgresql-$major-hll"
}

start_postgres() {
  if [ -n "$EXT_DB" ]; then
    command -v pg_isready >/dev/null || apt_install postgresql-client
    pg_isready -q -d "$DATABASE_URL" || die "DATABASE_URL is set but the server does not answer: $DATABASE_URL"
    log "postgres: using DATABASE_URL (external), starting none"
    return
  fi
  local bin; bin=$(pg_bindir)
  if [ -z "$bin" ]; then apt_install postgresql; bin=$(pg_bindir); fi
  [ -n "$bin" ] || die "PostgreSQL binaries not found after install"
  ensure_hll "$bin"
  is_root && ! id postgres >/dev/null 2>&1 && useradd --system --home /var/lib/postgresql postgres
  local dir; dir=$(pg_datadir)
  if [ -f "$dir/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    log "postgres: already running on 127.0.0.1:$PG_PORT"
  else
    # Only a cluster being created picks another port: an existing one keeps its port (a restart right after a
    # kill -9 must not move the server because the old socket was still closing).
    if [ -f "$dir/PG_VERSION" ]; then
      port_open 127.0.0.1 "$PG_PORT" && die "port $PG_PORT is in use by another process: stop it, or set PG_PORT (or DATABASE_URL to use that server)"
    else
      choose_pg_port
    fi
    mkdir -p "$dir" "$LOGS"
    is_root && chown postgres: "$dir" "$(dirname "$dir")" && chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      log "postgres: creating cluster in $dir"
      as_pg "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
      cat >>"$dir/postgresql.conf" <<EOF
# product-views local cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
shared_buffers = 256MB
max_connections = 200
wal_compression = on
checkpoint_timeout = 15min
max_wal_size = 2GB
EOF
    fi
    local pglog; pglog=$(pg_logfile)
    touch "$pglog"; is_root && chown postgres: "$pglog"
    [ "$pglog" = "$LOGS/postgres.log" ] || ln -sfn "$pglog" "$LOGS/postgres.log"
    local opts="-p $PG_PORT" f src
    if [ -n "${PV_TEST_TLS:-}" ]; then
      # The suite's TLS tests: the server also takes TLS, with the certificate of ensure_tls (plain connections too).
      ensure_tls
      for f in crt key; do
        src="$DATA/tls/server.pem"; [ $f = key ] && src="$DATA/tls/server-key.pem"
        as_pg sh -c "umask 077; cat > '$dir/server.$f'" <"$src"
      done
      opts="$opts -c ssl=on"
    fi
    as_pg "$bin/pg_ctl" -D "$dir" -l "$pglog" -o "$opts" -w -t 60 start >/dev/null \
      || die "postgres did not start; see $pglog"
    log "postgres: started on 127.0.0.1:$PG_PORT (data $dir)"
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/$PG_DB"
  ensure_database "$PG_DB"
}

ensure_database() {
  local bin; bin=$(pg_bindir)
  if ! "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc "select 1 from pg_database where datname='$1'" | grep -q 1; then
    "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$1"
    log "postgres: created database $1"
  fi
}

stop_postgres() {
  [ -z "$EXT_DB" ] || return 0
  local bin dir; bin=$(pg_bindir); dir=$(pg_datadir)
  [ -n "$bin" ] && [ -f "$dir/postmaster.pid" ] || return 0
  as_pg "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 && log "postgres: stopped" || true
}

# ---------------------------------------------------------------- Apache Kafka (KRaft, one combined node)
ensure_java() {
  local v=0
  if command -v java >/dev/null; then
    v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  fi
  [ "${v:-0}" -ge 17 ] || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
}

kafka_libs() { printf '%s' "$CACHE/kafka/$KAFKA_VERSION/libs"; }

ensure_kafka_libs() {
  local libs; libs=$(kafka_libs)
  [ -f "$libs/.complete" ] && return
  ensure_java
  rm -rf "$libs"; mkdir -p "$libs"
  long_step "kafka: downloading org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies (Maven Central)" \
    mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$libs" -DincludeScope=runtime >"$CACHE/kafka/mvn.log" 2>&1 \
    || die "maven could not resolve Kafka; see $CACHE/kafka/mvn.log"
  touch "$libs/.complete"
}

kafka_java() { java -Xms256m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties" -cp "$(kafka_libs)/*" "$@"; }

# KAFKA_NODES=3: three KRaft nodes (each broker and controller) from the same jars, on KAFKA_PORT and
# KAFKA_CONTROLLER_PORT, + 10 and + 20; topics get replication factor 3 and min.insync.replicas=2. Default: one node.
KAFKA_NODES="${KAFKA_NODES:-1}"
case "$KAFKA_NODES" in 1|3) ;; *) die "KAFKA_NODES must be 1 or 3 (got $KAFKA_NODES)" ;; esac
kafka_port() { echo $((KAFKA_PORT + ($1 - 1) * 10)); }
kafka_cport() { echo $((KAFKA_CONTROLLER_PORT + ($1 - 1) * 10)); }
# One node keeps the names it always had (run/kafka.pid, .data/kafka, logs/kafka.log).
kafka_name() { if [ "$KAFKA_NODES" = 1 ]; then echo kafka; else echo "kafka$1"; fi; }
kafka_dir() { if [ "$KAFKA_NODES" = 1 ]; then echo "$DATA/kafka"; else echo "$DATA/kafka-cluster/node$1"; fi; }
kafka_brokers() {
  local out="" i
  for i in $(seq 1 "$KAFKA_NODES"); do out+="${out:+,}127.0.0.1:$(kafka_port "$i")"; done
  echo "$out"
}

# The suite's TLS and SASL tests (PV_TEST_TLS=1, set by scripts/test.sh): a CA of its own, certificates for the
# server and a client (127.0.0.1 and localhost), in $DATA/tls; on one Kafka node, two more listeners.
TLS_KEY_PASSWORD=pv-test-key
SASL_USER=pvtest
SASL_PASSWORD=pv-test-secret
ensure_tls() {
  local d="$DATA/tls" who
  [ -s "$d/kafka-keystore.pem" ] && return 0
  command -v openssl >/dev/null || die "missing: openssl (Debian: sudo apt-get install -y openssl)"
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=product-views test CA" \
    -keyout "$d/ca-key.pem" -out "$d/ca.pem" 2>/dev/null || die "openssl could not make the test CA"
  for who in server client; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$who" -keyout "$d/$who-key.pem" -out "$d/$who.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/$who.ext"
    openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial -days 3650 \
      -extfile "$d/$who.ext" -out "$d/$who.pem" 2>/dev/null || die "openssl could not sign the test $who certificate"
  done
  # Kafka's PEM keystore: the key (PKCS#8, encrypted with PBE-SHA1-3DES: Java 17 reads no PBES2) and its certificate.
  openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in "$d/server-key.pem" -passout "pass:$TLS_KEY_PASSWORD" -out "$d/server-key-enc.pem"
  cat "$d/server-key-enc.pem" "$d/server.pem" >"$d/kafka-keystore.pem"
  log "tls: test CA and certificates in $d"
}
secure_listeners() { [ -n "${PV_TEST_TLS:-}" ] && [ "$KAFKA_NODES" = 1 ]; }
# SSL (a client certificate required) on KAFKA_PORT + 2, SASL_SSL (PLAIN, SCRAM-SHA-256/512) on + 3.
secure_kafka_properties() {
  local d="$DATA/tls" m
  cat <<EOF
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL
ssl.keystore.type=PEM
ssl.keystore.location=$d/kafka-keystore.pem
ssl.key.password=$TLS_KEY_PASSWORD
ssl.truststore.type=PEM
ssl.truststore.location=$d/ca.pem
listener.name.ssl.ssl.client.auth=required
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
EOF
  for m in 256 512; do
    echo "listener.name.sasl_ssl.scram-sha-$m.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
  done
}

start_kafka_node() { # start_kafka_node <node id>: starts it and returns at once (a quorum needs its peers up)
  local id=$1 name dir port cport voters="" i p listeners advertised extra=""
  name=$(kafka_name "$id"); dir=$(kafka_dir "$id"); port=$(kafka_port "$id"); cport=$(kafka_cport "$id")
  if pid_alive "$name"; then log "$name: already running on 127.0.0.1:$port"; return; fi
  listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
  advertised="PLAINTEXT://127.0.0.1:$port"
  if secure_listeners; then
    ensure_tls
    extra="SSL://127.0.0.1:$((port + 2)),SASL_SSL://127.0.0.1:$((port + 3))"
    listeners+=",$extra"; advertised+=",$extra"
  fi
  for p in "$port" "$cport" $(secure_listeners && echo $((port + 2)) $((port + 3))); do
    port_open 127.0.0.1 "$p" && die "port $p is in use by another process: stop it, or set KAFKA_PORT/KAFKA_CONTROLLER_PORT (or KAFKA_BROKERS to use that cluster)"
  done
  for i in $(seq 1 "$KAFKA_NODES"); do voters+="${voters:+,}$i@127.0.0.1:$(kafka_cport "$i")"; done
  local rf=1 isr=1
  if [ "$KAFKA_NODES" = 3 ]; then rf=3; isr=2; fi
  mkdir -p "$dir/logs" "$LOGS" "$RUN"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
$(if secure_listeners; then secure_kafka_properties; else echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"; fi)
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/logs
num.partitions=${KAFKA_PARTITIONS:-6}
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=72
EOF
  if [ ! -f "$dir/logs/meta.properties" ]; then
    # Every node of a cluster is formatted with the same cluster id.
    local idfile="$dir/cluster.id"
    [ "$KAFKA_NODES" = 1 ] || idfile="$(dirname "$dir")/cluster.id"
    [ -s "$idfile" ] || kafka_java kafka.tools.StorageTool random-uuid >"$idfile"
    log "$name: formatting KRaft storage"
    local scram=()
    if secure_listeners; then
      # SCRAM users live in the metadata log: written when it is formatted.
      scram=(--add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]" --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]")
    fi
    kafka_java kafka.tools.StorageTool format -t "$(cat "$idfile")" "${scram[@]}" \
      -c "$dir/server.properties" >>"$LOGS/$name.log" 2>&1 || die "kafka storage format failed; see $LOGS/$name.log"
  fi
  # The subshell becomes the JVM (exec), so the pid file names the broker itself.
  (cd "$dir" && exec -a "product-views-$name" java -Xms256m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties" -cp "$(kafka_libs)/*" \
    kafka.Kafka "$dir/server.properties" >>"$LOGS/$name.log" 2>&1 </dev/null) &
  echo $! >"$RUN/$name.pid"
}

start_kafka() { # start_kafka [node id]: every node, or that one
  if [ -n "$EXT_KAFKA" ]; then
    local first=${KAFKA_BROKERS%%,*}
    port_open "${first%:*}" "${first##*:}" || die "KAFKA_BROKERS is set but $first does not answer"
    log "kafka: using KAFKA_BROKERS=$KAFKA_BROKERS (external), starting none"
    return
  fi
  KAFKA_BROKERS=$(kafka_brokers)
  export KAFKA_BROKERS
  ensure_kafka_libs
  local nodes i port name
  nodes=${1:-$(seq 1 "$KAFKA_NODES")}
  for i in $nodes; do start_kafka_node "$i"; done
  # A node of a cluster opens its port only once the quorum has formed, i.e. once its peers' JVMs are up too: on a
  # busy 2-core machine three JVMs starting together took more than 90 s.
  local secs=90
  [ "$KAFKA_NODES" = 1 ] || secs=240
  for i in $nodes; do
    port=$(kafka_port "$i"); name=$(kafka_name "$i")
    wait_for "$secs" "$name" port_open 127.0.0.1 "$port" || die "$name did not open port $port in $secs s; see $LOGS/$name.log"
    log "$name: started on 127.0.0.1:$port (pid $(cat "$RUN/$name.pid"))"
  done
}

# Every Kafka pid file, whatever KAFKA_NODES says now: `down` must not leave a cluster node behind.
kafka_pidnames() { local f; for f in "$RUN"/kafka.pid "$RUN"/kafka[0-9].pid; do [ -f "$f" ] && basename "$f" .pid; done; true; }

# Stops several at once: the nodes of a KRaft quorum must go down together (stopped one after another, the last
# one waits for a quorum that is already gone until it is killed).
stop_pidfiles() { # stop_pidfiles <seconds> <name>...
  local secs=$1 name; shift
  for name in "$@"; do if pid_alive "$name"; then kill -TERM "$(cat "$RUN/$name.pid")" 2>/dev/null || true; fi; done
  for name in "$@"; do stop_pidfile "$name" "$secs"; done
  true
}

stop_pidfile() { # stop_pidfile <name> <seconds>
  pid_alive "$1" || { rm -f "$RUN/$1.pid"; return 0; }
  local pid; pid=$(cat "$RUN/$1.pid")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then log "$1: did not stop in $2 s, killing"; kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.2
  done
  rm -f "$RUN/$1.pid"
  log "$1: stopped"
}

# ---------------------------------------------------------------- the app
bootstrap() { # topic + migrations, both idempotent
  (cd "$ROOT" && bun src/main.ts setup) || die "setup (topic + migrations) failed"
}

start_app() { # start_app <api|worker>
  mkdir -p "$LOGS" "$RUN"
  if pid_alive "$1"; then log "$1: already running (pid $(cat "$RUN/$1.pid"))"; return; fi
  local port=$PORT; [ "$1" = worker ] && port=$WORKER_METRICS_PORT
  port_open 127.0.0.1 "$port" && die "port $port is in use by another process: stop it, or set $( [ "$1" = worker ] && echo WORKER_METRICS_PORT || echo PORT)"
  (cd "$ROOT" && exec bun src/main.ts "$1" >>"$LOGS/$1.log" 2>&1 </dev/null) &
  echo $! >"$RUN/$1.pid"
  wait_for 30 "$1" port_open 127.0.0.1 "$port" || die "$1 did not start; see $LOGS/$1.log"
  log "$1: started (pid $(cat "$RUN/$1.pid"), port $port, log $LOGS/$1.log)"
}

# The API's secrets for a local stack: ADMIN_TOKEN (product creation), INGEST_TOKEN (a backend's counted views) and
# VIEWER_SECRET (the daily viewer salt's root), each from the environment or, when unset, from $DATA/<name> (mode
# 0600), made once from /dev/urandom. Never printed: `make up` says where they are.
local_secret() { # local_secret <VAR> <file>
  local var=$1 file="$DATA/$2"
  if [ -n "${!var:-}" ]; then export "${var?}"; return; fi
  if [ ! -s "$file" ]; then
    mkdir -p "$DATA"
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
  fi
  export "$var=$(cat "$file")"
}

local_secrets() {
  local_secret ADMIN_TOKEN admin-token
  local_secret INGEST_TOKEN ingest-token
  local_secret VIEWER_SECRET viewer-secret
}

infra() {
  ensure_bun
  ensure_deps
  start_postgres
  start_kafka
  bootstrap
}

# Prints the variables the app needs, for `eval "$(scripts/stack.sh env)"`.
print_env() {
  printf 'export PATH=%q\n' "$PATH"
  if [ -n "$EXT_DB" ]; then printf 'export DATABASE_URL=%q\n' "$EXT_DB"
  else printf 'export DATABASE_URL=%q\n' "postgres://postgres@127.0.0.1:$PG_PORT/$PG_DB"; fi
  printf 'export KAFKA_BROKERS=%q\n' "${KAFKA_BROKERS:-$(kafka_brokers)}"
  # What a trusted client of this stack sends (the bench): the token `up` made, if it made one.
  [ -n "${INGEST_TOKEN:-}" ] || [ ! -s "$DATA/ingest-token" ] || printf 'export INGEST_TOKEN=%q\n' "$(cat "$DATA/ingest-token")"
  # Where the suite's TLS and SASL tests find the secured listeners and what to present there.
  if secure_listeners && [ -z "$EXT_KAFKA" ]; then
    printf 'export PV_TEST_TLS_DIR=%q PV_TEST_KAFKA_SSL=%q PV_TEST_KAFKA_SASL_SSL=%q PV_TEST_SASL_USER=%q PV_TEST_SASL_PASSWORD=%q\n' \
      "$DATA/tls" "127.0.0.1:$((KAFKA_PORT + 2))" "127.0.0.1:$((KAFKA_PORT + 3))" "$SASL_USER" "$SASL_PASSWORD"
  fi
}

status() {
  local bin dir; bin=$(pg_bindir); dir=$(pg_datadir)
  if [ -n "$EXT_DB" ]; then echo "postgres  external  $DATABASE_URL"
  elif [ -n "$bin" ] && [ -f "$dir/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    echo "postgres  running   127.0.0.1:$PG_PORT"
  else echo "postgres  stopped"; fi
  if [ -n "$EXT_KAFKA" ]; then echo "kafka     external  $KAFKA_BROKERS"
  else
    for i in $(seq 1 "$KAFKA_NODES"); do
      local name; name=$(kafka_name "$i")
      if pid_alive "$name"; then printf '%-9s running   127.0.0.1:%s (pid %s)\n' "$name" "$(kafka_port "$i")" "$(cat "$RUN/$name.pid")"
      else printf '%-9s stopped\n' "$name"; fi
    done
  fi
  for c in api worker; do
    if pid_alive $c; then
      local port=$PORT; [ $c = worker ] && port=$WORKER_METRICS_PORT
      printf '%-9s running   http://127.0.0.1:%s (pid %s)\n' $c "$port" "$(cat "$RUN/$c.pid")"
    else printf '%-9s stopped\n' $c; fi
  done
}

cmd=${1:-up}
case "$cmd" in
  up)
    infra
    export DATABASE_URL KAFKA_BROKERS
    local_secrets
    start_app worker
    start_app api
    status
    log "ready: API http://127.0.0.1:$PORT (Swagger UI at /swagger), logs in $LOGS, stop with: make down"
    log "tokens (unless set in the environment): create products with Authorization: Bearer \$(cat $DATA/admin-token);"
    log "  a backend sends counted views with Authorization: Bearer \$(cat $DATA/ingest-token); pages need none"
    ;;
  infra) infra; status ;;
  deps) ensure_bun; ensure_deps ;;
  apt) shift; [ $# -gt 0 ] || die "usage: $0 apt <package...>"; apt_install "$@" ;;
  browser) # Chromium for the browser tests; where it cannot be installed they are skipped, not failed
    if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :
    elif is_root && command -v apt-get >/dev/null; then
      ( apt_install chromium ) || log "chromium could not be installed; the browser tests will be skipped"
    else log "no chromium and no way to install it (needs root + apt-get); the browser tests will be skipped"; fi ;;
  env) ensure_bun >/dev/null 2>&1 || true; print_env ;;
  down)
    stop_pidfile api 30
    stop_pidfile worker 30
    # shellcheck disable=SC2046
    stop_pidfiles 60 $(kafka_pidnames)
    stop_postgres
    ;;
  status) status ;;
  restart-app)
    ensure_bun; eval "$(print_env)"
    stop_pidfile api 30; stop_pidfile worker 30
    local_secrets
    start_app worker; start_app api
    ;;
  start)
    ensure_bun; eval "$(print_env)"
    case "${2:-}" in
      kafka) unset KAFKA_BROKERS; start_kafka "${3:-}" ;;
      postgres) unset DATABASE_URL; start_postgres ;;
      api|worker) local_secrets; start_app "$2" ;;
      *) die "usage: $0 start kafka|postgres|api|worker" ;;
    esac ;;
  kill)
    case "${2:-}" in
      kafka)
        for i in ${3:-$(seq 1 "$KAFKA_NODES")}; do
          name=$(kafka_name "$i")
          if pid_alive "$name"; then kill -KILL "$(cat "$RUN/$name.pid")"; fi
          rm -f "$RUN/$name.pid"; log "$name: killed"
        done ;;
      postgres)
        [ -z "$EXT_DB" ] || die "postgres is external; not killing it"
        pgpid=$(head -n1 "$(pg_datadir)/postmaster.pid" 2>/dev/null || true)
        # Its children notice it is gone and exit; wait for those (only this server's: another may run beside).
        kids=$( [ -n "$pgpid" ] && pgrep -P "$pgpid" | tr '\n' ' ' || true)
        [ -n "$pgpid" ] && kill -KILL "$pgpid" 2>/dev/null && log "postgres: killed (pid $pgpid)" || true
        for _ in $(seq 1 50); do
          alive=0; for k in $kids; do kill -0 "$k" 2>/dev/null && alive=1; done
          [ $alive = 1 ] || break; sleep 0.1
        done ;;
      *) die "usage: $0 kill kafka|postgres" ;;
    esac ;;
  wipe)
    [ "${2:-}" = kafka ] || die "usage: $0 wipe kafka"
    [ -z "$EXT_KAFKA" ] || die "kafka is external; not wiping it"
    # shellcheck disable=SC2046
    stop_pidfiles 60 $(kafka_pidnames)
    rm -rf "$DATA/kafka" "$DATA/kafka-cluster"
    log "kafka: data deleted" ;;
  stop)
    case "${2:-}" in
      kafka)
        names=()
        for i in ${3:-$(seq 1 "$KAFKA_NODES")}; do names+=("$(kafka_name "$i")"); done
        stop_pidfiles 60 "${names[@]}" ;;
      postgres) stop_postgres ;;
      api|worker) stop_pidfile "$2" 30 ;;
      *) die "usage: $0 stop kafka|postgres|api|worker" ;;
    esac ;;
  *) die "usage: $0 up|infra|down|status|env|browser|apt <p...>|restart-app|start <c>|stop <c>|kill <c>|wipe kafka" ;;
esac
