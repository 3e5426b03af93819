import type { Config } from "../config.ts";
import { createLogger, type Logger } from "../log.ts";
import { Registry } from "../metrics.ts";
import { registerProcessMetrics } from "../process-metrics.ts";
import { connect, type Database } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { createTopicAdmin } from "../kafka/admin.ts";
import { createConsumer, registerClientInfo } from "../kafka/client.ts";
import { fetchTopicIdentity } from "../kafka/topic-id.ts";
import { startConsumer, type Store } from "../worker/consumer.ts";
import { createDeadLetters } from "../kafka/dead-letter.ts";
import { flush } from "../worker/writer.ts";
import { loadOffsets } from "../db/offsets.ts";
import { expireKeys } from "../db/keys.ts";
import { sampleUnknown } from "../db/products.ts";
import { startKeyExpiry } from "../worker/key-expiry.ts";
import { startHistoryUpkeep } from "../worker/history-upkeep.ts";
import { foldMinutes } from "../db/history.ts";
import { maintainPartitions, oldestMinute } from "../db/history-partitions.ts";
import { createSetAside } from "../worker/refused.ts";

export async function start(config: Config) {
  const root = createLogger(config.logLevel, "worker");
  const metrics = new Registry();
  const processMetrics = registerProcessMetrics(metrics);
  const librdkafka = registerClientInfo(metrics);
  // Flushes may wait on row locks held by another worker: a longer statement timeout than the API's, the same
  // as the flusher's own deadline for a write.
  const database = connect(
    { ...config.db, poolSize: Math.min(config.db.poolSize, 4) },
    "product-views-worker",
    config.worker.flushTimeoutMs,
  );
  await migrate(database.sql);
  const { kafka, worker, history } = config;
  await maintainPartitions(database.sql, Date.now(), history);

  const admin = createTopicAdmin(kafka);
  const deadLetters = createDeadLetters(kafka);
  const store = workerStore(database, config, admin, deadLetters, root, metrics);
  const makeSource = consumerFactory(kafka, worker, root.child({ component: "librdkafka" }));
  const consumer = startConsumer(kafka, worker, makeSource, store, root.child({ component: "consumer" }), metrics);
  const upkeep = startUpkeep(database, config, root, metrics);
  let started = false;
  consumer.ready.then(
    () => (started = true),
    () => {},
  );

  const server = serveWorkerEndpoints(worker.metricsPort, config.http.host, metrics, () => ({ started, held: consumer.held() }));
  root.info({ metricsPort: server.port, topic: kafka.topic, group: worker.groupId, librdkafka }, "worker started");

  return {
    port: server.port,
    ready: consumer.ready,
    /** Rejects when the worker cannot go on (it could never subscribe): main.ts exits non-zero. */
    fatal: consumer.crashed,
    async stop() {
      // Order matters: stop fetching and flush what is pending (Postgres first, then Kafka), then leave.
      await consumer.stop();
      await upkeep.stop();
      await deadLetters.close();
      processMetrics.stop();
      await admin.close();
      server.stop(true);
      await database.close();
      root.info("worker stopped");
    },
  };
}

/** What the consume loop reads and writes: Postgres (through the set-aside of refused keyed requests) and Kafka. */
function workerStore(
  database: Database,
  config: Config,
  admin: ReturnType<typeof createTopicAdmin>,
  deadLetters: ReturnType<typeof createDeadLetters>,
  root: Logger,
  metrics: Registry,
): Store {
  const { kafka, worker, history } = config;
  const setAside = createSetAside({
    flush: (batch, topicId, opts) =>
      flush(
        database.db,
        kafka.topic,
        batch,
        topicId,
        { windowMs: worker.idempotencyWindowMs },
        {
          ...opts,
          historyFrom: oldestMinute(Date.now(), history).getTime(),
        },
      ),
    deadLetter: (letter) => deadLetters.send(letter),
    log: root.child({ component: "set-aside" }),
    metrics,
  });
  return {
    loadOffsets: (partitions) => loadOffsets(database.db, kafka.topic, partitions),
    flush: setAside.flush,
    sampleUnknown: (ids) => sampleUnknown(database.db, ids),
    deadLetter: (letter) => deadLetters.send(letter),
    watermarks: () => admin.watermarks(),
    groupMembers: () => admin.groupMembers(worker.groupId),
    topicId: async () => (await fetchTopicIdentity(kafka.brokers, kafka.topic, kafka.security)).topicId,
  };
}

/** The periodic upkeep beside the loop: expired Idempotency-Keys, and the history's fold and partitions. */
function startUpkeep(database: Database, config: Config, root: Logger, metrics: Registry) {
  const { worker, history } = config;
  const keyExpiry = startKeyExpiry({
    // Kept one more window after they end: a repeat accepted inside the window and flushed by a worker that lags
    // up to a window behind is still recognised (db/keys.ts).
    expire: (limit) => expireKeys(database.db, limit, worker.idempotencyWindowMs),
    intervalMs: Math.min(60_000, worker.idempotencyWindowMs),
    log: root.child({ component: "key-expiry" }),
    metrics,
  });
  const historyUpkeep = startHistoryUpkeep({
    fold: (limit) => foldMinutes(database.db, limit),
    partitions: () => maintainPartitions(database.sql, Date.now(), history),
    intervalMs: history.foldIntervalMs,
    log: root.child({ component: "history" }),
    metrics,
  });
  return {
    async stop() {
      await keyExpiry.stop();
      await historyUpkeep.stop();
    },
  };
}

/** The worker's Kafka consumers: each instance its own client.id, so a replaced one is polled until the group no longer lists it. */
function consumerFactory(kafka: Config["kafka"], worker: Config["worker"], log: Logger) {
  const instance = crypto.randomUUID().slice(0, 8);
  let made = 0;
  return () =>
    createConsumer(
      kafka,
      `${kafka.clientId}-worker-${instance}-${++made}`,
      {
        "group.id": worker.groupId,
        "enable.auto.commit": false,
        "auto.offset.reset": "earliest",
        "enable.auto.offset.store": false,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": worker.maxPollIntervalMs,
        "fetch.min.bytes": worker.fetchMinBytes,
        "fetch.wait.max.ms": worker.fetchWaitMs,
        // Prefetch bounded well below librdkafka's 64 MiB default: the worker's RSS stays small and flat.
        "queued.max.messages.kbytes": 16384,
        "fetch.max.bytes": 8 * 1024 * 1024,
        "reconnect.backoff.max.ms": 1000,
      },
      log,
    );
}

/** /metrics, /health and /ready (not ready while it has not joined its group, or while it holds partitions it must not apply). */
function serveWorkerEndpoints(port: number, hostname: string, metrics: Registry, state: () => { started: boolean; held: unknown[] }) {
  return Bun.serve({
    port,
    hostname,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/metrics") return new Response(metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4" } });
      if (path === "/health") return Response.json({ status: "ok" });
      if (path === "/ready") {
        const { started, held } = state();
        const ready = started && held.length === 0;
        return Response.json({ status: ready ? "ready" : "not_ready", consuming: started, held }, { status: ready ? 200 : 503 });
      }
      return Response.json({ error: `no route for ${req.method} ${path}`, code: "not_found" }, { status: 404 });
    },
  });
}
