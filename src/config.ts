import { isIP } from "node:net";
import { type DbTls, type KafkaSecurity, readDbTls, readKafkaSecurity } from "./config-security.ts";
import { MAX_IDLE_S } from "./http/keep-alive.ts";
// The one place that reads the environment. Every bad key is reported at once, then the process stops;
// modules receive only their own frozen part.

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
export type AckMode = "durable" | "queued";

export interface HttpConfig {
  readonly port: number;
  readonly host: string;
  readonly bodyLimitBytes: number;
  readonly batchBodyLimitBytes: number;
  readonly adminToken: string | undefined;
  /** Product creation without ADMIN_TOKEN: refused (401) unless the operator opted in with ADMIN_OPEN=1. */
  readonly adminOpen: boolean;
  readonly workers: number;
  readonly topRefreshMs: number;
  /** How often the top-N reads the whole ranking (a table scan) although notifications keep it exact. */
  readonly topFullRefreshMs: number;
  readonly idleTimeoutS: number;
  /** Open GET /top/stream connections per API process at most, and per client address. */
  readonly topStreamMaxClients: number;
  readonly topStreamMaxPerAddress: number;
  /** Origins whose pages may call the view and read routes: "*" (any) or an exact list. */
  readonly corsOrigins: "*" | readonly string[];
}

export interface KafkaConfig {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly partitions: number;
  readonly clientId: string;
  /** librdkafka debug contexts (its `debug` property), e.g. "cgrp,fetch"; empty: librdkafka logs errors only. */
  readonly debug: string;
  /** TLS and SASL, for every Kafka client of the service (kafka/security.ts). */
  readonly security: KafkaSecurity;
}

export interface ProducerConfig {
  readonly lingerMs: number;
  readonly batchMaxMessages: number;
  readonly compression: "none" | "gzip" | "snappy" | "lz4" | "zstd";
  readonly ackMode: AckMode;
  readonly maxInFlight: number;
  readonly deliveryTimeoutMs: number;
  readonly lanes: number;
  /** Where each window's messages go (ingest/lane-batch.ts): partitions in turn, or each request with its first product. */
  readonly partitioner: "round-robin" | "product";
  /** How long a repeated Idempotency-Key is recognised (API memory and the worker's stored keys). */
  readonly idempotencyWindowMs: number;
  /** Keys one API process remembers at most (oldest forgotten first; the worker still counts a repeat once). */
  readonly idempotencyMemoryKeys: number;
}

export interface WorkerConfig {
  readonly groupId: string;
  readonly flushIntervalMs: number;
  readonly flushMaxProducts: number;
  /** Row budget of the flushes (worker/flusher.ts): 0 for none; the longest wait it may impose. */
  readonly flushMaxRowsPerS: number;
  readonly flushMaxIntervalMs: number;
  readonly flushTimeoutMs: number;
  readonly maxPendingProducts: number;
  readonly fetchBatchSize: number;
  /** librdkafka fetch.min.bytes / fetch.wait.max.ms: the broker answers a fetch when this much is there, or after the wait. */
  readonly fetchMinBytes: number;
  readonly fetchWaitMs: number;
  /** Kafka's committed offsets trail the flushes by at most this (worker/kafka-commits.ts says why they may). */
  readonly commitIntervalMs: number;
  readonly metricsPort: number;
  readonly maxPollIntervalMs: number;
  /** How long a counted Idempotency-Key keeps later repeats from being counted. */
  readonly idempotencyWindowMs: number;
}

/** Who may count what (ingest/admission.ts): the rules for public callers, and who is trusted. */
export interface TrustConfig {
  /** Bearer tokens of trusted integrations (several during a rotation); empty: every caller is public. */
  readonly ingestTokens: readonly string[];
  /** Addresses and CIDRs of proxies whose X-Forwarded-For is believed (http/client-address.ts). */
  readonly trustedProxies: readonly string[];
  /** Secret the daily viewer salt is derived from; undefined: a random one per process (said at start). */
  readonly viewerSecret: string | undefined;
  /** A viewer's repeat view of a product within this is not counted; 0: every view counts. */
  readonly repeatWindowMs: number;
  /** (viewer, product) pairs one API process remembers at most (oldest dropped first). */
  readonly repeatMemory: number;
  readonly botFilter: boolean;
  /** Items of a public POST /views at most. */
  readonly publicMaxBatchItems: number;
  /** Token buckets in views: per viewer and per client address (0 per second: no limit). */
  readonly viewerBurst: number;
  readonly viewerPerS: number;
  readonly addressBurst: number;
  readonly addressPerS: number;
  /** Buckets each limiter holds at most (oldest dropped first). */
  readonly rateMemory: number;
}

/** The views history (db/history.ts): how long it is kept, how often it is folded and ranked. */
export interface HistoryConfig {
  /** Days of per-minute rows kept (dropped by whole daily partitions). */
  readonly minuteDays: number;
  /** Days of per-hour rows kept (dropped by whole monthly partitions). */
  readonly hourDays: number;
  /** How often a worker folds minutes into hours. */
  readonly foldIntervalMs: number;
  /** How often the API sums each window whole (24 h and 7 d also at each hour; 1 h follows the flushes between). */
  readonly windowRefreshMs: number;
}

export interface DbConfig {
  readonly url: string;
  readonly poolSize: number;
  /** TLS with a CA of one's own (DATABASE_SSL_CA); without it, DATABASE_URL's sslmode applies as postgres.js reads it. */
  readonly tls?: DbTls;
}

export interface Config {
  readonly http: HttpConfig;
  readonly kafka: KafkaConfig;
  readonly producer: ProducerConfig;
  readonly worker: WorkerConfig;
  readonly db: DbConfig;
  readonly trust: TrustConfig;
  readonly history: HistoryConfig;
  readonly logLevel: LogLevel;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

export type ConfigReader = ReturnType<typeof reader>;

function reader(env: Env, problems: string[]) {
  const raw = (key: string): string | undefined => {
    const v = env[key];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  };
  const int = (key: string, fallback: number, min: number, max: number): number => {
    const v = raw(key);
    if (v === undefined) return fallback;
    if (!/^-?\d+$/.test(v)) {
      problems.push(`${key}=${JSON.stringify(v)} is not an integer (expected ${min}..${max})`);
      return fallback;
    }
    const n = Number(v);
    if (n < min || n > max) problems.push(`${key}=${v} is out of range (expected ${min}..${max})`);
    return n;
  };
  const oneOf = <T extends string>(key: string, fallback: T, allowed: readonly T[]): T => {
    const v = raw(key);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v)) {
      problems.push(`${key}=${JSON.stringify(v)} must be one of ${allowed.join(", ")}`);
      return fallback;
    }
    return v as T;
  };
  const str = (key: string, fallback: string, pattern?: RegExp, expected?: string): string => {
    const v = raw(key);
    if (v === undefined) return fallback;
    if (pattern && !pattern.test(v)) problems.push(`${key}=${JSON.stringify(v)} is invalid (expected ${expected})`);
    return v;
  };
  const problem = (text: string) => problems.push(text);
  return { raw, int, oneOf, str, problem };
}

const BROKER = /^[A-Za-z0-9.\-_]+:\d{1,5}$/;
const TOPIC = /^[A-Za-z0-9._-]{1,249}$/;
// librdkafka's `debug` contexts (its CONFIGURATION.md): an unknown one makes librdkafka refuse the whole client.
const DEBUG_CONTEXT =
  "(all|generic|broker|topic|metadata|feature|queue|msg|protocol|cgrp|security|fetch|interceptor|plugin|consumer|admin|eos|mock|assignor|conf|telemetry)";
const KAFKA_DEBUG = new RegExp(`^${DEBUG_CONTEXT}(,${DEBUG_CONTEXT})*$`);
const ORIGIN = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$|^https?:\/\/\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

const TOKEN = /^[\x21-\x2b\x2d-\x7e]+$/;

/** A comma-separated value's non-empty entries. */
const list = (v: string | undefined) =>
  (v ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);

function isAddressOrCidr(entry: string): boolean {
  const [address, bits, extra] = entry.split("/");
  const family = isIP(address ?? "");
  if (family === 0 || extra !== undefined) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const r = reader(env, problems);

  const url = r.str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/product_views");
  try {
    const u = new URL(url);
    if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") throw new Error();
  } catch {
    problems.push(`DATABASE_URL=${JSON.stringify(url)} is not a postgres:// URL`);
  }

  const dbTls = readDbTls(r, url);

  const brokersRaw = r.str("KAFKA_BROKERS", "127.0.0.1:9092");
  const brokers = brokersRaw
    .split(",")
    .map((b) => b.trim())
    .filter(Boolean);
  if (brokers.length === 0 || brokers.some((b) => !BROKER.test(b))) {
    problems.push(`KAFKA_BROKERS=${JSON.stringify(brokersRaw)} must be a comma-separated list of host:port`);
  }

  const adminToken = r.raw("ADMIN_TOKEN");
  if (adminToken !== undefined && adminToken.length < 16) {
    problems.push("ADMIN_TOKEN must be at least 16 characters when set");
  }
  const ingestTokens = list(r.raw("INGEST_TOKEN"));
  if (ingestTokens.some((t) => t.length < 16 || !TOKEN.test(t))) {
    problems.push("INGEST_TOKEN must be a comma-separated list of tokens of 16 or more printable characters (no spaces or commas)");
  }
  const trustedProxies = list(r.raw("TRUSTED_PROXIES"));
  const badProxies = trustedProxies.filter((p) => !isAddressOrCidr(p));
  if (badProxies.length > 0) problems.push(`TRUSTED_PROXIES has entries that are no address or CIDR: ${badProxies.join(", ")}`);
  const viewerSecret = r.raw("VIEWER_SECRET");
  if (viewerSecret !== undefined && viewerSecret.length < 32) problems.push("VIEWER_SECRET must be at least 32 characters when set");

  // "*" or a comma-separated list of exact origins (scheme://host[:port], as browsers send them).
  const corsRaw = r.str("CORS_ORIGINS", "*");
  let corsOrigins: "*" | string[] = "*";
  if (corsRaw !== "*") {
    corsOrigins = corsRaw
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean);
    const bad = corsOrigins.filter((o) => !ORIGIN.test(o));
    if (corsOrigins.length === 0 || bad.length > 0) {
      problems.push(
        `CORS_ORIGINS=${JSON.stringify(corsRaw)} must be "*" or a comma-separated list of origins like https://shop.example (bad: ${bad.join(", ") || "empty"})`,
      );
    }
    corsOrigins = corsOrigins.map((o) => o.toLowerCase());
  }

  // One window for both: the API answers repeats from memory within it, the worker refuses to count them within it.
  const idempotencyWindowS = r.int("IDEMPOTENCY_WINDOW_S", 600, 1, 7 * 86_400);

  const config: Config = {
    http: {
      port: r.int("PORT", 8080, 0, 65535),
      host: r.str("HOST", "0.0.0.0"),
      bodyLimitBytes: r.int("BODY_LIMIT_BYTES", 64 * 1024, 256, 16 * 1024 * 1024),
      // A full batch (1000 items of ~67 bytes) must fit, with room for pretty-printed JSON.
      batchBodyLimitBytes: r.int("BATCH_BODY_LIMIT_BYTES", 256 * 1024, 80 * 1024, 64 * 1024 * 1024),
      adminToken,
      adminOpen: r.oneOf("ADMIN_OPEN", "0", ["0", "1"] as const) === "1",
      workers: r.int("API_WORKERS", 1, 1, 64),
      topRefreshMs: r.int("TOP_REFRESH_MS", 1000, 50, 60_000),
      topFullRefreshMs: r.int("TOP_FULL_REFRESH_MS", 300_000, 1000, 86_400_000),
      idleTimeoutS: r.int("HTTP_IDLE_TIMEOUT_S", 10, 1, MAX_IDLE_S),
      topStreamMaxClients: r.int("TOP_STREAM_MAX_CLIENTS", 1000, 0, 100_000),
      topStreamMaxPerAddress: r.int("TOP_STREAM_MAX_PER_ADDRESS", 20, 1, 100_000),
      corsOrigins,
    },
    kafka: {
      brokers,
      topic: r.str("KAFKA_TOPIC", "product-views", TOPIC, "letters, digits, '.', '_' or '-', at most 249"),
      partitions: r.int("KAFKA_PARTITIONS", 6, 1, 10_000),
      clientId: r.str("KAFKA_CLIENT_ID", "product-views", TOPIC, "letters, digits, '.', '_' or '-'"),
      debug: r.str("KAFKA_DEBUG", "", KAFKA_DEBUG, "a comma-separated list of librdkafka debug contexts, e.g. cgrp,fetch"),
      security: readKafkaSecurity(r),
    },
    producer: {
      // The producer's batching window (ingest/producer.ts): longer windows cost less CPU per view for a few ms of
      // latency; 15 ms is where bench/RESULTS.md found the trade best.
      lingerMs: r.int("KAFKA_LINGER_MS", 15, 0, 1000),
      batchMaxMessages: r.int("KAFKA_BATCH_MAX_MESSAGES", 10_000, 1, 1_000_000),
      compression: r.oneOf("KAFKA_COMPRESSION", "lz4", ["none", "gzip", "snappy", "lz4", "zstd"] as const),
      ackMode: r.oneOf("INGEST_ACK", "durable", ["durable", "queued"] as const),
      maxInFlight: r.int("INGEST_MAX_IN_FLIGHT", 100_000, 1, 10_000_000),
      deliveryTimeoutMs: r.int("INGEST_TIMEOUT_MS", 5000, 1500, 120_000),
      lanes: r.int("KAFKA_PRODUCER_LANES", 2, 1, 32),
      // One message per window instead of one per partition touched: the broker's and the API's CPU per view depend
      // on windows, not partitions (lane-batch.ts; bench/RESULTS.md).
      partitioner: r.oneOf("KAFKA_PARTITIONER", "round-robin", ["round-robin", "product"] as const),
      idempotencyWindowMs: idempotencyWindowS * 1000,
      idempotencyMemoryKeys: r.int("IDEMPOTENCY_MEMORY_KEYS", 200_000, 0, 100_000_000),
    },
    worker: {
      groupId: r.str("KAFKA_GROUP_ID", "product-views-worker", TOPIC, "letters, digits, '.', '_' or '-'"),
      // What a view waits for its flush, at most: freshness against a little worker and Postgres CPU per view
      // (bench/RESULTS.md).
      flushIntervalMs: r.int("FLUSH_INTERVAL_MS", 150, 5, 60_000),
      flushMaxProducts: r.int("FLUSH_MAX_PRODUCTS", 10_000, 1, 1_000_000),
      // Above this many rows a second the flushes space out (up to FLUSH_MAX_INTERVAL_MS) so views coalesce into fewer
      // row updates: Postgres writes fewer rows per view at high rates (docs/capacity.md).
      flushMaxRowsPerS: r.int("FLUSH_MAX_ROWS_PER_S", 10_000, 0, 10_000_000),
      flushMaxIntervalMs: r.int("FLUSH_MAX_INTERVAL_MS", 3000, 5, 600_000),
      // A flush not settled by then is abandoned and retried (safe: see worker/flusher.ts); also its statement_timeout.
      flushTimeoutMs: r.int("FLUSH_TIMEOUT_MS", 15_000, 1000, 600_000),
      maxPendingProducts: r.int("MAX_PENDING_PRODUCTS", 200_000, 1, 10_000_000),
      fetchBatchSize: r.int("FETCH_BATCH_SIZE", 5000, 1, 100_000),
      // The broker answers the worker's fetch per 64 KB or per KAFKA_FETCH_WAIT_MS, not per produced batch: fewer
      // fetches, less worker and broker CPU per view, for up to the wait added to freshness (bench/RESULTS.md).
      fetchMinBytes: r.int("KAFKA_FETCH_MIN_BYTES", 65_536, 1, 100_000_000),
      fetchWaitMs: r.int("KAFKA_FETCH_WAIT_MS", 50, 0, 300_000),
      commitIntervalMs: r.int("KAFKA_COMMIT_INTERVAL_MS", 5000, 0, 600_000),
      metricsPort: r.int("WORKER_METRICS_PORT", 9464, 0, 65535),
      idempotencyWindowMs: idempotencyWindowS * 1000,
      // librdkafka evicts a consumer that has not polled for this long; the loop polls even while paused.
      maxPollIntervalMs: r.int("KAFKA_MAX_POLL_INTERVAL_MS", 60_000, 7000, 3_600_000),
    },
    db: {
      url,
      poolSize: r.int("DB_POOL_SIZE", 10, 1, 200),
      ...(dbTls ? { tls: dbTls } : {}),
    },
    trust: {
      ingestTokens,
      trustedProxies,
      viewerSecret,
      repeatWindowMs: r.int("VIEW_REPEAT_WINDOW_S", 1800, 0, 7 * 86_400) * 1000,
      repeatMemory: r.int("VIEW_REPEAT_MEMORY", 1_000_000, 1000, 100_000_000),
      botFilter: r.oneOf("BOT_FILTER", "on", ["on", "off"] as const) === "on",
      publicMaxBatchItems: r.int("PUBLIC_MAX_BATCH_ITEMS", 100, 1, 1000),
      viewerBurst: r.int("RATE_VIEWER_BURST", 200, 1, 1_000_000),
      viewerPerS: r.int("RATE_VIEWER_PER_S", 5, 0, 1_000_000),
      addressBurst: r.int("RATE_ADDRESS_BURST", 500, 1, 10_000_000),
      addressPerS: r.int("RATE_ADDRESS_PER_S", 50, 0, 10_000_000),
      rateMemory: r.int("RATE_LIMIT_MEMORY", 100_000, 1000, 10_000_000),
    },
    history: {
      minuteDays: r.int("HISTORY_MINUTE_DAYS", 7, 1, 366),
      hourDays: r.int("HISTORY_HOUR_DAYS", 400, 8, 36_600),
      foldIntervalMs: r.int("HISTORY_FOLD_INTERVAL_MS", 300_000, 100, 3_600_000),
      windowRefreshMs: r.int("TOP_WINDOW_REFRESH_MS", 300_000, 100, 3_600_000),
    },
    logLevel: r.oneOf("LOG_LEVEL", "info", ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const),
  };

  const t = config.trust;
  if (t.viewerBurst < t.publicMaxBatchItems || t.addressBurst < t.publicMaxBatchItems) {
    problems.push("RATE_VIEWER_BURST and RATE_ADDRESS_BURST must be >= PUBLIC_MAX_BATCH_ITEMS (a full public batch must be able to pass)");
  }
  if (config.history.hourDays < config.history.minuteDays) {
    problems.push("HISTORY_HOUR_DAYS must be >= HISTORY_MINUTE_DAYS (hours are folded from minutes)");
  }
  if (config.worker.maxPendingProducts < config.worker.flushMaxProducts) {
    problems.push("MAX_PENDING_PRODUCTS must be >= FLUSH_MAX_PRODUCTS");
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(config);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object") {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
