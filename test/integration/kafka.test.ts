import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Registry } from "../../src/metrics.ts";
import { createLogger } from "../../src/log.ts";
import { createProducer, type ViewProducer } from "../../src/ingest/producer.ts";
import { partitionOf } from "../../src/ingest/partition.ts";
import { decodeViewMessage } from "../../src/domain/view.ts";
import { bounded, post, prepare, readTopic, recreateTopic, seedProducts, testEnv, uniqueName, waitFor } from "./harness.ts";
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

  test("views produced with the project's producer are consumed back, each count once, keyed to their partition", async () => {
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

  test("all views of one product land on one partition, in order", async () => {
    const id = crypto.randomUUID();
    for (let i = 1; i <= 20; i++) await producer.publish([{ product_id: id, count: i }]);
    const mine = (await readTopic(ctx.config, 1)).filter((m) => m.key?.toString() === id);
    expect(new Set(mine.map((m) => m.partition)).size).toBe(1);
    expect(mine.map((m) => decodeViewMessage(m.payload)!.views[0]!.count)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  test("concurrent requests are merged into one message per partition, each on its first product's partition", async () => {
    const partitions = ctx.config.kafka.partitions;
    // 60 single-view requests, ten per partition: no outcome depends on how random ids happen to hash.
    const ids: string[] = [];
    const perPartition = new Map<number, number>();
    while (ids.length < 60) {
      const id = crypto.randomUUID();
      const p = partitionOf(id, partitions);
      if ((perPartition.get(p) ?? 0) >= 10) continue;
      perPartition.set(p, (perPartition.get(p) ?? 0) + 1);
      ids.push(id);
    }
    await Promise.all(ids.map((id) => producer.publish([{ product_id: id, count: 3 }])));
    const mine = (await readTopic(ctx.config, 1)).filter((m) =>
      decodeViewMessage(m.payload)?.views.some((e) => ids.includes(e.product_id)),
    );
    // Each lane sends at most one message per partition; the four lanes take the first four requests, the
    // next free lane takes all 56 queued ones: at most 4 + 6 messages carry the 60 requests.
    expect(mine.length).toBeLessThanOrEqual(4 + partitions);
    const seen = new Map<string, number>();
    for (const m of mine) {
      // librdkafka's partitioner (pinned) and partitionOf() agree: the batch's one-message-per-partition holds.
      expect(m.partition).toBe(partitionOf(m.key!.toString(), partitions));
      for (const e of decodeViewMessage(m.payload)!.views) {
        expect(partitionOf(e.product_id, partitions)).toBe(m.partition);
        seen.set(e.product_id, (seen.get(e.product_id) ?? 0) + e.count);
      }
    }
    expect([...seen.keys()].sort()).toEqual([...ids].sort());
    expect([...seen.values()].every((n) => n === 3)).toBe(true);
  });

  test("a batch request travels whole in one message, whatever partitions its products hash to", async () => {
    const ids: string[] = Array.from({ length: 40 }, () => crypto.randomUUID());
    await producer.publish(ids.map((product_id) => ({ product_id, count: 2 })));
    const mine = (await readTopic(ctx.config, 1)).filter((m) =>
      decodeViewMessage(m.payload)?.views.some((e) => ids.includes(e.product_id)),
    );
    expect(mine).toHaveLength(1);
    expect(mine[0]!.partition).toBe(partitionOf(ids[0]!, ctx.config.kafka.partitions));
    expect(
      decodeViewMessage(mine[0]!.payload)!
        .views.map((e) => e.product_id)
        .sort(),
    ).toEqual([...ids].sort());
  });

  test("a message Kafka refuses fails only the requests in it: every 202 is in Kafka, every 503 'not written' is not", async () => {
    // A topic that refuses record batches over 2000 bytes: a 600-product request cannot be written, singles can.
    const config = loadConfig({ ...env, KAFKA_TOPIC: uniqueName("small-messages") });
    await recreateTopic(config, { configEntries: [{ name: "max.message.bytes", value: "2000" }] });
    const p = createProducer(config.kafka, config.producer, createLogger("silent", "test"), new Registry());
    try {
      const big: string[] = Array.from({ length: 600 }, () => crypto.randomUUID());
      const bigPartition = partitionOf(big[0]!, config.kafka.partitions);
      // Singles on the other partitions: they share the lane batch with the big request, not its message.
      const singles: string[] = [];
      while (singles.length < 30) {
        const id = crypto.randomUUID();
        if (partitionOf(id, config.kafka.partitions) !== bigPartition) singles.push(id);
      }
      // One single per lane keeps every lane busy, so the big request and the other singles queue up together.
      const busy = config.producer.lanes;
      const lanesBusy = singles.slice(0, busy).map((id) => p.publish([{ product_id: id, count: 1 }]));
      const queued = [
        p.publish(big.map((product_id) => ({ product_id, count: 1 }))),
        ...singles.slice(busy).map((id) => p.publish([{ product_id: id, count: 1 }])),
      ];
      const results = await Promise.allSettled([...lanesBusy, ...queued]);
      const bigResult = results[busy]!;
      expect(bigResult.status).toBe("rejected");
      expect((bigResult as PromiseRejectedResult).reason.details).toEqual({ written: "no" });
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(30);
      const inKafka = new Set((await readTopic(config, 1)).flatMap((m) => decodeViewMessage(m.payload)!.views.map((e) => e.product_id)));
      expect([...inKafka].sort()).toEqual([...singles].sort());
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
      for (const m of messages) expect(m.partition).toBe(partitionOf(product!, 3));
    } finally {
      await bounded("api.stop", api.stop());
    }
  });
});
