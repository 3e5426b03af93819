import type { Config } from "../config.ts";
import { backoff } from "../backoff.ts";
import { withDeadline } from "../deadline.ts";
import { createLogger } from "../log.ts";
import { Registry } from "../metrics.ts";
import { registerProcessMetrics } from "../process-metrics.ts";
import { connect, guard } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { createProduct, existingIds, getProduct } from "../db/products.ts";
import { notifyChanged } from "../db/flush-channel.ts";
import { createTopCache } from "../ranking/top.ts";
import { createWindowTop, windowReads } from "../ranking/top-window.ts";
import { seriesOf } from "../db/history.ts";
import { zeroFilled } from "../domain/history.ts";
import { createGate, sharedCheck } from "../db/gate.ts";
import { createTopStream } from "../http/top-stream.ts";
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

export interface Running {
  port: number;
  stop(): Promise<void>;
}

/** A window re-rank may take this long (its own connections' statement_timeout too). */
const WINDOW_READ_TIMEOUT_MS = 60_000;

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
  // Windows go to the topic's real partitions in turn (lane-batch.ts); until the broker tells their count, the
  // configured one is used, and a window sent to a partition the topic lacks is refused whole (503 "not written").
  const admin = createTopicAdmin(config.kafka);
  let stopped = false;
  void (async () => {
    const plog = root.child({ component: "partitions" });
    for (let attempt = 0; !stopped; attempt++) {
      try {
        const n = await admin.partitionCount();
        if (n > 0) {
          producer.setPartitions(n);
          if (n !== config.kafka.partitions)
            plog.warn(
              { partitions: n, configured: config.kafka.partitions },
              "topic has another partition count than configured; using the topic's",
            );
          return;
        }
      } catch (err) {
        if (attempt === 0) plog.warn({ err }, "cannot read the topic's partition count yet; retrying");
      }
      await Bun.sleep(backoff(attempt, { baseMs: 200 }));
    }
  })();
  const keyMemory = createKeyMemory({
    windowMs: config.producer.idempotencyWindowMs,
    maxKeys: config.producer.idempotencyMemoryKeys,
  });
  const keyMetrics = keyMemoryMetrics(keyMemory, metrics);
  // Reads by id take at most half the pool, and 100 more wait: the rest is the catalog's (db/gate.ts).
  const reads = createGate(Math.max(1, Math.floor(config.db.poolSize / 2)), 100);
  const clientAddress = createClientAddress(config.trust.trustedProxies);
  const catalog = createCatalog((ids) => guard(existingIds(database.db, ids)));
  const viewers = createViewerHasher(config.trust.viewerSecret);
  const admit = createAdmission(config.trust, viewers.viewerOf, metrics);
  logTrust(root, config, viewers.ephemeral);
  const topLog = root.child({ component: "top" });
  const top = createTopCache(
    database,
    topLog,
    { refreshMs: config.http.topRefreshMs, fullRefreshMs: config.http.topFullRefreshMs },
    metrics,
  );
  await top.start();
  const topUnique = createTopCache(database, topLog, {
    refreshMs: config.http.topRefreshMs,
    fullRefreshMs: config.http.topFullRefreshMs,
    by: "unique_viewers",
  });
  await topUnique.start();
  const windowLog = root.child({ component: "top-window" });
  // A window's re-rank sums all its rows: seconds at a million products (bench/RESULTS.md), so it has connections of
  // its own with a longer statement timeout, and never waits behind (or holds up) the view path's lookups.
  const windowDb = connect({ ...config.db, poolSize: 2 }, "product-views-api-windows", WINDOW_READ_TIMEOUT_MS);
  const windowOpts = { refreshMs: config.history.windowRefreshMs, reads: windowReads(metrics), readTimeoutMs: WINDOW_READ_TIMEOUT_MS };
  const windows = {
    "1h": createWindowTop(windowDb, windowLog, "1h", windowOpts),
    "24h": createWindowTop(windowDb, windowLog, "24h", windowOpts),
    "7d": createWindowTop(windowDb, windowLog, "7d", windowOpts),
  };
  await Promise.all(Object.values(windows).map((w) => w.start()));

  // Heartbeats well inside the idle timeout, which would otherwise cut a quiet stream.
  const streamOptions = {
    heartbeatMs: Math.min(5000, (config.http.idleTimeoutS * 1000) / 2),
    maxClients: config.http.topStreamMaxClients,
    maxPerAddress: config.http.topStreamMaxPerAddress,
    clients: new Set<() => void>(),
    perAddress: new Map<string, number>(),
  };
  const topStreams = {
    view_count: createTopStream(top, streamOptions),
    unique_viewers: createTopStream(topUnique, streamOptions),
    "1h": createTopStream(windows["1h"], streamOptions),
    "24h": createTopStream(windows["24h"], streamOptions),
    "7d": createTopStream(windows["7d"], streamOptions),
  };
  const app = createApp({
    http: config.http,
    log: root.child({ component: "http" }),
    metrics,
    views: createViewRecorder(catalog, producer, { memory: keyMemory, onRepeat: keyMetrics.repeat }, admit),
    callerOf: createCallerOf({ ingestTokens: config.trust.ingestTokens, corsOrigins: config.http.corsOrigins, clientAddress }),
    clientAddress,
    products: {
      async create(p) {
        const product = await guard(createProduct(database.db, p));
        catalog.remember(product.id);
        // Every API process ranks it through the NOTIFY; this one at once. Best effort: a lost NOTIFY is
        // caught by the next full read (TOP_FULL_REFRESH_MS).
        if (product.view_count > 0) {
          top.invalidate([product.id]);
          await guard(notifyChanged(database.sql, [product])).catch((err) =>
            topLog.warn({ err }, "could not announce a new product to the top-N"),
          );
        }
        return product;
      },
      get: (id) => reads(() => guard(getProduct(database.db, id))),
      topJson: (limit, by, window) => (window !== "all" ? windows[window] : by === "view_count" ? top : topUnique).topJson(limit),
      topStream: (limit, signal, by, address, window) => topStreams[window === "all" ? by : window].open(limit, signal, address),
      series: (id, q) =>
        reads(async () => {
          const product = await guard(getProduct(database.db, id));
          if (!product) return null;
          const points = zeroFilled(await guard(seriesOf(database.db, id, q.bucket, q.from, q.to)), q);
          const total = points.reduce((n, p) => n + p.views, 0);
          return { product_id: id, bucket: q.bucket, from: points[0]!.t, to: points[points.length - 1]!.t, total, points };
        }),
    },
    ready: sharedCheck(async () => {
      const [postgres, kafka] = await Promise.all([
        guard(database.sql`SELECT 1`).then(
          () => true,
          () => false,
        ),
        brokersReachable(config.kafka.brokers),
      ]);
      return { postgres, kafka };
    }, 1000),
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
      topStreams.view_count.closeAll();
      await withDeadline(Promise.resolve(server.server?.stop(false)), 10_000);
      await server.server?.stop(true);
      await producer.close();
      stopped = true; // the discovery loop ends at its next turn; not awaited, its sleep may be long
      await admin.close();
      await top.stop();
      await topUnique.stop();
      await Promise.all(Object.values(windows).map((w) => w.stop()));
      await windowDb.close();
      processMetrics.stop();
      await database.close();
      root.info("api stopped");
    },
  };
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
