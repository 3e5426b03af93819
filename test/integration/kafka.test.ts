import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Registry } from "../../src/metrics.ts";
import { createLogger } from "../../src/log.ts";
import { createProducer, type ViewProducer } from "../../src/ingest/producer.ts";
import { decodeViewMessage, MAX_MESSAGE_ITEMS } from "../../src/domain/view.ts";
import { partitionOf } from "../../src/ingest/partition.ts";
import { seedProducts } from "./harness/db.ts";
import { post } from "./harness/http.ts";
import { readTopic, recreateTopic } from "./harness/kafka.ts";
import { prepare, testEnv, uniqueName } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";
import { loadConfig } from "../../src/config.ts";
import { start as startApi } from "../../src/entry/api.ts";

describe("producer on the real broker", () => {
  const env = testEnv();
  let ctx: Awaited<ReturnType<typeof prepare>>;
  let producer: ViewProducer;

  beforeAll(async () => {
    ctx = await prepare(env);
    producer = createProducer(ctx.config.kafka, ctx.config.producer, createLogger("error", "test"), new Registry());
  });
  afterAll(async () => {
    await bounded("producer.close", producer.close());
    await bounded("ctx.db.close", ctx.db.close());
  });

  test("views produced with the project's producer are consumed back, each count once", async () => {
    const ids: string[] = Array.from({ length: 50 }, () => crypto.randomUUID());
    await Promise.all(ids.map((id, i) => producer.publish([{ product_id: id, count: i + 1 }])));
    const messages = (await readTopic(ctx.config, 1)).filter((m) =>
      decodeViewMessage(m.payload)?.views.some((e) => ids.includes(e.product_id)),
    );
    const counts = new Map<string, number>();
    for (const m of messages)
      for (const e of decodeViewMessage(m.payload)!.views) counts.set(e.product_id, (counts.get(e.product_id) ?? 0) + e.count);
    for (const [i, id] of ids.entries()) expect(counts.get(id)).toBe(i + 1);
  });

  test("successive windows go to the partitions in turn, even for one product: each partition gets an even share", async () => {
    const partitions = ctx.config.kafka.partitions;
    const id = crypto.randomUUID();
    // One request at a time: each is its own window, so its own message.
    for (let i = 1; i <= 2 * partitions; i++) await producer.publish([{ product_id: id, count: i }]);
    const mine = (await readTopic(ctx.config, 1)).filter((m) => decodeViewMessage(m.payload)?.views.some((e) => e.product_id === id));
    expect(mine).toHaveLength(2 * partitions);
    const perPartition = new Map<number, number>();
    for (const m of mine) perPartition.set(m.partition, (perPartition.get(m.partition) ?? 0) + 1);
    expect([...perPartition.keys()].sort()).toEqual(Array.from({ length: partitions }, (_, p) => p));
    expect([...perPartition.values()].every((n) => n === 2)).toBe(true);
    expect(mine.every((m) => m.key === null || m.key === undefined || m.key.length === 0)).toBe(true);
    const counts = mine.flatMap((m) => decodeViewMessage(m.payload)!.views.map((e) => e.count)).sort((a, b) => a - b);
    expect(counts).toEqual(Array.from({ length: 2 * partitions }, (_, i) => i + 1));
  });

  test("concurrent requests are merged: 60 requests travel in at most one message per lane plus one", async () => {
    const ids: string[] = Array.from({ length: 60 }, () => crypto.randomUUID());
    await Promise.all(ids.map((id) => producer.publish([{ product_id: id, count: 3 }])));
    const mine = (await readTopic(ctx.config, 1)).filter((m) =>
      decodeViewMessage(m.payload)?.views.some((e) => ids.includes(e.product_id)),
    );
    // Free lanes may each take what is queued when their window ends; every request after that waits for the
    // next free lane, which takes all of them in one message (60 products are far below a message's limit).
    expect(mine.length).toBeLessThanOrEqual(ctx.config.producer.lanes + 1);
    const seen = new Map<string, number>();
    for (const m of mine)
      for (const e of decodeViewMessage(m.payload)!.views) seen.set(e.product_id, (seen.get(e.product_id) ?? 0) + e.count);
    expect([...seen.keys()].sort()).toEqual([...ids].sort());
    expect([...seen.values()].every((n) => n === 3)).toBe(true);
  });

  test("a batch request travels whole in one message", async () => {
    const ids: string[] = Array.from({ length: 40 }, () => crypto.randomUUID());
    await producer.publish(ids.map((product_id) => ({ product_id, count: 2 })));
    const mine = (await readTopic(ctx.config, 1)).filter((m) =>
      decodeViewMessage(m.payload)?.views.some((e) => ids.includes(e.product_id)),
    );
    expect(mine).toHaveLength(1);
    expect(
      decodeViewMessage(mine[0]!.payload)!
        .views.map((e) => e.product_id)
        .sort(),
    ).toEqual([...ids].sort());
  });

  test("with KAFKA_PARTITIONER=product a request goes with its first product, keyed by it: a product's views stay on one partition", async () => {
    const config = loadConfig({ ...env, KAFKA_TOPIC: uniqueName("by-product"), KAFKA_PARTITIONER: "product" });
    await recreateTopic(config);
    const p = createProducer(config.kafka, config.producer, createLogger("silent", "test"), new Registry());
    try {
      const hot = crypto.randomUUID();
      for (let i = 1; i <= 10; i++) await p.publish([{ product_id: hot, count: i }]);
      const ids: string[] = Array.from({ length: 60 }, () => crypto.randomUUID());
      await Promise.all(ids.map((id) => p.publish([{ product_id: id, count: 1 }])));
      const messages = await readTopic(config, 11);
      const partitions = config.kafka.partitions;
      let hotViews = 0;
      const seen = new Set<string>();
      for (const m of messages) {
        expect(m.partition).toBe(partitionOf(m.key!.toString(), partitions));
        for (const v of decodeViewMessage(m.payload)!.views) {
          // Single-view requests: every product is in its own partition's message.
          expect(m.partition).toBe(partitionOf(v.product_id, partitions));
          if (v.product_id === hot) hotViews += v.count;
          else seen.add(v.product_id);
        }
      }
      expect(hotViews).toBe(55);
      expect([...seen].sort()).toEqual([...ids].sort());
    } finally {
      await bounded("p.close", p.close());
    }
  });

  test("a message Kafka refuses fails only the requests in it: every 202 is in Kafka, every 503 'not written' is not", async () => {
    // A topic that refuses record batches over 20 000 bytes: a message of 4 000 products cannot be written, one of 30 can.
    const config = loadConfig({ ...env, KAFKA_TOPIC: uniqueName("small-messages"), KAFKA_PRODUCER_LANES: "1", KAFKA_LINGER_MS: "0" });
    await recreateTopic(config, { configEntries: [{ name: "max.message.bytes", value: "20000" }] });
    const p = createProducer(config.kafka, config.producer, createLogger("silent", "test"), new Registry());
    try {
      // The one lane takes the first request at once; everything after it queues for the lane's next batch, where
      // four requests of 1 000 products fill the first message (MAX_MESSAGE_ITEMS) and the 30 singles spill into
      // the next partition's message.
      const first = p.publish([{ product_id: crypto.randomUUID(), count: 1 }]);
      const big = Array.from({ length: MAX_MESSAGE_ITEMS / 1000 }, () =>
        p.publish(Array.from({ length: 1000 }, () => ({ product_id: crypto.randomUUID(), count: 1 }))),
      );
      const singles: string[] = Array.from({ length: 30 }, () => crypto.randomUUID());
      const small = singles.map((id) => p.publish([{ product_id: id, count: 1 }]));
      const results = await Promise.allSettled([first, ...big, ...small]);
      expect(results[0]!.status).toBe("fulfilled");
      for (const r of results.slice(1, 1 + big.length)) {
        expect(r.status).toBe("rejected");
        expect((r as PromiseRejectedResult).reason.details).toEqual({ written: "no" });
      }
      expect(results.slice(1 + big.length).filter((r) => r.status === "fulfilled")).toHaveLength(30);
      const messages = await readTopic(config, 2);
      expect(messages).toHaveLength(2);
      const inKafka = messages
        .slice()
        .sort((a, b) => decodeViewMessage(a.payload)!.views.length - decodeViewMessage(b.payload)!.views.length);
      expect(
        decodeViewMessage(inKafka[1]!.payload)!
          .views.map((e) => e.product_id)
          .sort(),
      ).toEqual([...singles].sort());
    } finally {
      await bounded("p.close", p.close());
    }
  });

  test("batches are built for the topic's real partition count, not the configured one", async () => {
    // The topic has 3 partitions; the API is configured with 6 and learns 3 from the broker.
    const config = loadConfig({ ...env, KAFKA_TOPIC: uniqueName("three"), KAFKA_PARTITIONS: "6" });
    await recreateTopic(loadConfig({ ...env, KAFKA_TOPIC: config.kafka.topic, KAFKA_PARTITIONS: "3" }));
    const api = await startApi(config);
    const [product] = await seedProducts(ctx.db, 1, "three");
    try {
      const base = `http://127.0.0.1:${api.port}/api/v1/products`;
      await waitFor(
        "views accepted",
        async () => (await post(`${base}/view`, { product_id: product })).status === 202 || undefined,
        30_000,
        100,
      );
      const answers = await Promise.all(
        Array.from({ length: 40 }, () => post(`${base}/view`, { product_id: product }).then((r) => r.status)),
      );
      expect(answers.every((s) => s === 202)).toBe(true);
      const messages = await readTopic(config, 1);
      expect(messages.length).toBeGreaterThan(0);
      for (const m of messages) expect(m.partition).toBeLessThan(3);
    } finally {
      await bounded("api.stop", api.stop());
    }
  });
});
