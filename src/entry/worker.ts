import type { Config } from "../config.ts";
import { createLogger } from "../log.ts";
import { Registry } from "../metrics.ts";
import { connect } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { startConsumer } from "../worker/consumer.ts";
import { startLagMonitor } from "../worker/lag.ts";

export async function start(config: Config) {
  const root = createLogger(config.logLevel, "worker");
  const metrics = new Registry();
  // Flushes may wait on row locks held by another worker: a longer statement timeout than the API's.
  const database = connect({ ...config.db, poolSize: Math.min(config.db.poolSize, 4) }, "product-views-worker", 30_000);
  await migrate(database.sql);

  const consumer = startConsumer(config.kafka, config.worker, database.db, root.child({ component: "consumer" }), metrics);
  const lag = startLagMonitor(config.kafka, database.db, metrics, root.child({ component: "lag" }));

  const server = Bun.serve({
    port: config.worker.metricsPort,
    hostname: config.http.host,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/metrics") return new Response(metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4" } });
      if (path === "/health") return Response.json({ status: "ok" });
      return Response.json({ error: `no route for ${req.method} ${path}`, code: "not_found" }, { status: 404 });
    },
  });
  root.info({ metricsPort: server.port, topic: config.kafka.topic, group: config.worker.groupId }, "worker started");

  return {
    port: server.port,
    ready: consumer.ready,
    async stop() {
      // Order matters: stop fetching and flush what is pending (Postgres first, then Kafka), then leave.
      await consumer.stop();
      await lag.stop();
      server.stop(true);
      await database.close();
      root.info("worker stopped");
    },
  };
}
