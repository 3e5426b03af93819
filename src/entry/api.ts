import type { Config } from "../config.ts";
import { createLogger } from "../log.ts";
import { Registry } from "../metrics.ts";
import { connect, guard } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { createProduct, existingIds, getProduct } from "../db/products.ts";
import { createTopCache } from "../db/top.ts";
import { createCatalog } from "../ingest/catalog.ts";
import { createProducer } from "../ingest/producer.ts";
import { createViewRecorder } from "../ingest/views.ts";
import { brokersReachable } from "../kafka/admin.ts";
import { createApp } from "../http/app.ts";

export interface Running {
  port: number;
  stop(): Promise<void>;
}

export async function start(config: Config): Promise<Running> {
  const root = createLogger(config.logLevel, "api");
  const metrics = new Registry();
  const database = connect(config.db, "product-views-api");
  await migrate(database.sql);

  const producer = createProducer(config.kafka, config.producer, root.child({ component: "producer" }), metrics);
  const catalog = createCatalog((ids) => guard(existingIds(database.db, ids)));
  const top = createTopCache(database, root.child({ component: "top" }), config.http.topRefreshMs);
  await top.start();

  const app = createApp({
    http: config.http,
    log: root.child({ component: "http" }),
    metrics,
    views: createViewRecorder(catalog, producer),
    products: {
      async create(p) {
        const product = await guard(createProduct(database.db, p));
        catalog.remember(product.id);
        if (product.view_count > 0) top.invalidate();
        return product;
      },
      get: (id) => guard(getProduct(database.db, id)),
      topJson: (limit) => top.topJson(limit),
    },
    async ready() {
      const [postgres, kafka] = await Promise.all([
        guard(database.sql`SELECT 1`).then(() => true, () => false),
        brokersReachable(config.kafka.brokers),
      ]);
      return { postgres, kafka };
    },
  });

  const server = app.listen({
    port: config.http.port,
    hostname: config.http.host,
    reusePort: config.http.workers > 1,
    // A client that stops sending (slow-loris) loses its connection after this many idle seconds.
    idleTimeout: config.http.idleTimeoutS,
    // Bodies are limited by the app's own parser, which answers a JSON 413 from the declared length without
    // reading, and stops reading a chunked body at the limit. Bun's own cap answers an empty 413 that the app
    // never sees, so it is set far above any body the parser would read.
    maxRequestBodySize: 1024 * 1024 * 1024,
  });
  const port = server.server!.port!;
  root.info({ port, topic: config.kafka.topic, ack: config.producer.ackMode }, "api listening");

  return {
    port,
    async stop() {
      // Stop taking connections, let in-flight requests finish (their events get confirmed), then close.
      await server.server?.stop(false);
      await producer.close();
      await top.stop();
      await database.close();
      root.info("api stopped");
    },
  };
}
