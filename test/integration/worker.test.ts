import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Kafka, logLevel } from "kafkajs";
import { start as startWorker } from "../../src/entry/worker.ts";
import { createLogger } from "../../src/log.ts";
import { Registry } from "../../src/metrics.ts";
import { createProducer, type ViewProducer } from "../../src/ingest/producer.ts";
import { encodeViewEvents } from "../../src/domain/view.ts";
import { loadConfig } from "../../src/config.ts";
import { expectExactCounts, seedProducts, viewCounts } from "./harness/db.ts";
import { metric } from "./harness/http.ts";
import { publishViews } from "./harness/load.ts";
import { prepare, spawnService, testEnv, uniqueName } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

describe("worker on real Kafka and Postgres", () => {
  const env = testEnv({ FLUSH_INTERVAL_MS: "100" });
  let ctx: Awaited<ReturnType<typeof prepare>>;
  let producer: ViewProducer;
  let ids: string[];

  beforeAll(async () => {
    ctx = await prepare(env);
    ids = await seedProducts(ctx.db, 300, "worker");
    producer = createProducer(ctx.config.kafka, ctx.config.producer, createLogger("error", "test"), new Registry());
  });
  // Each test joins a group of its own: a new group reads the topic from the beginning, so every test also
  // replays what the earlier ones produced, and the offsets stored in Postgres must skip all of it.
  const withGroup = () => ({ ...env, KAFKA_GROUP_ID: uniqueName("workers-test") });

  /** The history was written by the same statements as the counts: each product's minutes sum to its count. */
  async function expectHistoryMatches(products: readonly string[]) {
    const rows = await ctx.db.sql<{ id: string; c: string; h: string }[]>`
      SELECT p.id, p.view_count::text AS c, coalesce(sum(m.views), 0)::text AS h
      FROM products p LEFT JOIN view_minutes m ON m.product_id = p.id
      WHERE p.id = ANY(${products as string[]}::uuid[]) GROUP BY p.id, p.view_count`;
    expect(rows.filter((r) => r.c !== r.h)).toEqual([]);
  }

  afterAll(async () => {
    await bounded("producer.close", producer.close());
    await bounded("ctx.db.close", ctx.db.close());
  });

  test("skewed traffic: every product grows by exactly its acknowledged views, with few row updates", async () => {
    const worker = await startWorker(ctx.config);
    const url = `http://127.0.0.1:${worker.port}`;
    try {
      const before = await viewCounts(ctx.db, ids);
      const acked = await publishViews((e) => producer.publish(e), ids, 30_000, { perCall: 50, concurrency: 8 });
      await expectExactCounts(ctx.db, before, acked, ids);
      const views = await metric(url, "worker_views_applied_total");
      const rows = await metric(url, "worker_rows_updated_total");
      expect(views).toBe(30_000);
      // Coalescing: hot products are updated once per flush, not once per view.
      expect(rows).toBeLessThan(views / 5);
    } finally {
      await bounded("worker.stop", worker.stop());
    }
  });

  test("a malformed message and a view of an unknown product are skipped and counted in metrics", async () => {
    const worker = await startWorker(loadConfig(withGroup()));
    const url = `http://127.0.0.1:${worker.port}`;
    try {
      const raw = new Kafka({ clientId: "poison", brokers: [...ctx.config.kafka.brokers], logLevel: logLevel.NOTHING }).producer();
      const ghost = crypto.randomUUID();
      await raw.connect();
      try {
        await raw.send({
          topic: ctx.config.kafka.topic,
          acks: -1,
          messages: [
            { key: Buffer.from(ids[0]!), value: Buffer.from("{this is not json") },
            { key: Buffer.from(ids[0]!), value: Buffer.from('{"product_id":"nope","count":1}') },
            { key: Buffer.from(ghost), value: encodeViewEvents([{ product_id: ghost, count: 1 }]) },
          ],
        });
      } finally {
        await raw.disconnect();
      }
      const before = await viewCounts(ctx.db, [ids[1]!]);
      await producer.publish([{ product_id: ids[1]!, count: 5 }]);
      await waitFor(
        "the view after the poison pills",
        async () => (await viewCounts(ctx.db, [ids[1]!])).get(ids[1]!) === before.get(ids[1]!)! + 5,
      );
      await waitFor(
        "metrics",
        async () =>
          (await metric(url, "worker_messages_total", '{outcome="malformed"}')) === 2 &&
          (await metric(url, "worker_unknown_products_total")) >= 1,
      );
    } finally {
      await bounded("worker.stop", worker.stop());
    }
  });

  test("kill -9 of the worker mid-stream, then a restart: no view lost, none counted twice", async () => {
    const before = await viewCounts(ctx.db, ids);
    const groupEnv = withGroup();
    let worker = await spawnService("worker", groupEnv);
    const publishing = publishViews((e) => producer.publish(e), ids, 20_000, { perCall: 20, concurrency: 4, paceMs: 2 });
    await waitFor("some views counted", async () => (await metric(worker.url, "worker_flushes_total")) >= 3);
    expect(await worker.kill("SIGKILL")).not.toBe(0);
    await Bun.sleep(1000);
    worker = await spawnService("worker", groupEnv);
    try {
      const acked = await publishing;
      await expectExactCounts(ctx.db, before, acked, ids);
      await expectHistoryMatches(ids);
    } finally {
      await worker.kill("SIGTERM");
    }
  });

  test("two workers in one group, one killed during the run: the other takes over, counts exact", async () => {
    const before = await viewCounts(ctx.db, ids);
    const groupEnv = withGroup();
    const a = await spawnService("worker", groupEnv);
    const b = await spawnService("worker", groupEnv);
    try {
      const publishing = publishViews((e) => producer.publish(e), ids, 20_000, { perCall: 20, concurrency: 4, paceMs: 2 });
      await waitFor(
        "both workers flushing",
        async () => (await metric(a.url, "worker_views_applied_total")) > 0 && (await metric(b.url, "worker_views_applied_total")) > 0,
      );
      await a.kill("SIGKILL");
      const acked = await publishing;
      await expectExactCounts(ctx.db, before, acked, ids);
      await expectHistoryMatches(ids);
    } finally {
      await a.kill("SIGKILL");
      expect(await b.kill("SIGTERM")).toBe(0);
    }
  });

  test("SIGTERM: the worker flushes what it holds and exits 0", async () => {
    const before = await viewCounts(ctx.db, ids);
    const w = await spawnService("worker", {
      ...withGroup(),
      FLUSH_INTERVAL_MS: "60000",
      FLUSH_MAX_PRODUCTS: "1000000",
      MAX_PENDING_PRODUCTS: "1000000",
    });
    const acked = await publishViews((e) => producer.publish(e), ids, 2000, { perCall: 1, concurrency: 16 });
    await waitFor("worker caught up", async () => (await metric(w.url, "worker_views_read_total")) >= 2000 || undefined, 30_000);
    expect(await w.kill("SIGTERM")).toBe(0);
    await expectExactCounts(ctx.db, before, acked, ids, 5000);
  });
});
