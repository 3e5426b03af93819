import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Registry } from "../../src/metrics.ts";
import { createLogger } from "../../src/log.ts";
import { createProducer, type ViewProducer } from "../../src/ingest/producer.ts";
import { partitionOf } from "../../src/ingest/partition.ts";
import { decodeViewEvents } from "../../src/domain/view.ts";
import { prepare, readTopic, testEnv } from "./harness.ts";

describe("producer on the real broker", () => {
  const env = testEnv();
  let ctx: Awaited<ReturnType<typeof prepare>>;
  let producer: ViewProducer;

  beforeAll(async () => {
    ctx = await prepare(env);
    producer = createProducer(ctx.config.kafka, ctx.config.producer, createLogger("error", "test"), new Registry());
  });
  afterAll(async () => {
    await producer.close();
    await ctx.db.close();
  });

  test("views produced with the project's producer are consumed back, each count once, keyed to their partition", async () => {
    const ids: string[] = Array.from({ length: 50 }, () => crypto.randomUUID());
    await Promise.all(ids.map((id, i) => producer.publish([{ product_id: id, count: i + 1 }])));
    const messages = (await readTopic(ctx.config, 1)).filter((m) => decodeViewEvents(m.payload)?.some((e) => ids.includes(e.product_id)));
    const counts = new Map<string, number>();
    for (const m of messages) for (const e of decodeViewEvents(m.payload)!) counts.set(e.product_id, (counts.get(e.product_id) ?? 0) + e.count);
    ids.forEach((id, i) => expect(counts.get(id)).toBe(i + 1));
  });

  test("all views of one product land on one partition, in order", async () => {
    const id = crypto.randomUUID();
    for (let i = 1; i <= 20; i++) await producer.publish([{ product_id: id, count: i }]);
    const mine = (await readTopic(ctx.config, 70)).filter((m) => m.key?.toString() === id);
    expect(new Set(mine.map((m) => m.partition)).size).toBe(1);
    expect(mine.map((m) => decodeViewEvents(m.payload)![0]!.count)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
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
    const mine = (await readTopic(ctx.config, 1)).filter((m) => decodeViewEvents(m.payload)?.some((e) => ids.includes(e.product_id)));
    // Each lane sends at most one message per partition; the four lanes take the first four requests, the
    // next free lane takes all 56 queued ones: at most 4 + 6 messages carry the 60 requests.
    expect(mine.length).toBeLessThanOrEqual(4 + partitions);
    const seen = new Map<string, number>();
    for (const m of mine) {
      // librdkafka's partitioner (pinned) and partitionOf() agree: the batch's one-message-per-partition holds.
      expect(m.partition).toBe(partitionOf(m.key!.toString(), partitions));
      for (const e of decodeViewEvents(m.payload)!) {
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
    const mine = (await readTopic(ctx.config, 1)).filter((m) => decodeViewEvents(m.payload)?.some((e) => ids.includes(e.product_id)));
    expect(mine).toHaveLength(1);
    expect(mine[0]!.partition).toBe(partitionOf(ids[0]!, ctx.config.kafka.partitions));
    expect(decodeViewEvents(mine[0]!.payload)!.map((e) => e.product_id).sort()).toEqual([...ids].sort());
  });
});
