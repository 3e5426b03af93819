import type { Config } from "../config.ts";
import { withDeadline } from "../deadline.ts";
import { createLogger } from "../log.ts";
import { Registry } from "../metrics.ts";
import { registerProcessMetrics } from "../process-metrics.ts";
import { connect, type Database, guard } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { existingIds } from "../db/products.ts";
import { createGate, sharedCheck } from "../db/gate.ts";
import { createCatalog } from "../ingest/catalog.ts";
import { createProducer } from "../ingest/producer.ts";
import { createViewRecorder } from "../ingest/views.ts";
import { createKeyMemory, keyMemoryMetrics } from "../ingest/idempotency.ts";
import { brokersReachable, createTopicAdmin } from "../kafka/admin.ts";
import { registerClientInfo } from "../kafka/client.ts";
import { createApp } from "../http/app.ts";
import { createCallerOf } from "../http/caller.ts";
import { createClientAddress } from "../http/client-address.ts";
import { serverIdleTimeout } from "../http/keep-alive.ts";
import { createAdmission } from "../ingest/admission.ts";
import { createViewerHasher } from "../ingest/viewer.ts";
import { startRankings } from "../ranking/rankings.ts";
import { productService } from "./api-products.ts";
import { followPartitionCount } from "./partitions.ts";

export interface Running {
  port: number;
  stop(): Promise<void>;
}

export async function start(config: Config): Promise<Running> {
  const root = createLogger(config.logLevel, "api");
  const metrics = new Registry();
  const processMetrics = registerProcessMetrics(metrics);
  const librdkafka = registerClientInfo(metrics);
  const database = connect(config.db, "product-views-api");
  await migrate(database.sql);
  const producer = createProducer(config.kafka, config.producer, root.child({ component: "producer" }), metrics, {
    librdkafkaLog: root.child({ component: "librdkafka" }),
  });
  const admin = createTopicAdmin(config.kafka);
  const partitions = followPartitionCount(admin, (n) => producer.setPartitions(n), config, root.child({ component: "partitions" }));
  const keyMemory = createKeyMemory({ windowMs: config.producer.idempotencyWindowMs, maxKeys: config.producer.idempotencyMemoryKeys });
  const keyMetrics = keyMemoryMetrics(keyMemory, metrics);
  // Reads by id take at most half the pool, and 100 more wait: the rest is the catalog's (db/gate.ts).
  const reads = createGate(Math.max(1, Math.floor(config.db.poolSize / 2)), 100);
  const clientAddress = createClientAddress(config.trust.trustedProxies);
  const catalog = createCatalog((ids) => guard(existingIds(database.db, ids)));
  const viewers = createViewerHasher(config.trust.viewerSecret);
  const admit = createAdmission(config.trust, viewers.viewerOf, metrics);
  logTrust(root, config, viewers.ephemeral);
  const rankings = await startRankings(database, config, metrics, root);
  const app = createApp({
    http: config.http,
    log: root.child({ component: "http" }),
    metrics,
    views: createViewRecorder(catalog, producer, { memory: keyMemory, onRepeat: keyMetrics.repeat }, admit),
    callerOf: createCallerOf({ ingestTokens: config.trust.ingestTokens, corsOrigins: config.http.corsOrigins, clientAddress }),
    clientAddress,
    products: productService(database, catalog, rankings, reads, root.child({ component: "top" })),
    ready: readiness(database, config),
  });
  const server = app.listen({
    port: config.http.port,
    hostname: config.http.host,
    reusePort: config.http.workers > 1,
    // A connection that sends nothing (a slow-loris, or a client's idle pool) is closed after at least this long.
    idleTimeout: serverIdleTimeout(config.http.idleTimeoutS),
    // Bodies are limited by the app's own parser, which answers a JSON 413 from the declared length without
    // reading, and stops reading a chunked body at the limit. Bun's own cap answers an empty 413 that the app
    // never sees, so it is set far above any body the parser would read.
    maxRequestBodySize: 1024 * 1024 * 1024,
  });
  const port = server.server!.port!;
  root.info({ port, topic: config.kafka.topic, ack: config.producer.ackMode, librdkafka }, "api listening");

  return {
    port,
    async stop() {
      // Stop taking connections, let in-flight requests finish (their events get confirmed), then close.
      // Bounded: a client holding a request open must not hold the process past its stop. Live streams never
      // finish on their own: ended first (EventSource clients reconnect to another process).
      rankings.closeStreams();
      await withDeadline(Promise.resolve(server.server?.stop(false)), 10_000);
      await server.server?.stop(true);
      await producer.close();
      partitions.stop(); // the discovery loop ends at its next turn; not awaited, its sleep may be long
      await admin.close();
      await rankings.stop();
      processMetrics.stop();
      await database.close();
      root.info("api stopped");
    },
  };
}

/** GET /ready: Postgres answers and a broker is reachable (shared by concurrent probes for a second). */
function readiness(database: Database, config: Config) {
  return sharedCheck(async () => {
    const [postgres, kafka] = await Promise.all([
      guard(database.sql`SELECT 1`).then(
        () => true,
        () => false,
      ),
      brokersReachable(config.kafka.brokers),
    ]);
    return { postgres, kafka };
  }, 1000);
}

/** What an operator must know about who may count and create: said once at start, never the secrets. */
function logTrust(log: ReturnType<typeof createLogger>, config: Config, ephemeralSalt: boolean) {
  const t = config.trust;
  if (config.http.adminToken === undefined) {
    if (config.http.adminOpen) log.warn("ADMIN_OPEN=1: anyone who reaches the API can create products");
    else log.info("product creation is closed (no ADMIN_TOKEN): POST /api/v1/products answers 401");
  }
  if (ephemeralSalt) {
    log.warn(
      "no VIEWER_SECRET: viewers are hashed with a random per-process salt, so repeats and unique viewers are not recognised across API processes or restarts",
    );
  }
  log.info(
    {
      ingestTokens: t.ingestTokens.length,
      trustedProxies: t.trustedProxies.length,
      repeatWindowS: t.repeatWindowMs / 1000,
      botFilter: t.botFilter,
      corsOrigins: config.http.corsOrigins,
    },
    "view rules",
  );
}
