import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Registry } from "../../src/metrics.ts";
import { createLogger } from "../../src/log.ts";
import { createProducer, toMessages, type ViewProducer } from "../../src/ingest/producer.ts";
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

  test("a view produced with the project's producer is consumed back, keyed by product id", async () => {
    const ids = Array.from({ length: 50 }, () => crypto.randomUUID());
    await Promise.all(ids.map((id, i) => producer.publish([{ product_id: id, count: i + 1 }])));
    const messages = await readTopic(ctx.config, ids.length);
    expect(messages).toHaveLength(ids.length);
    const byKey = new Map(messages.map((m) => [m.key!.toString(), decodeViewEvents(m.payload)?.[0]]));
    ids.forEach((id, i) => expect(byKey.get(id)).toEqual({ product_id: id, count: i + 1 }));
  });

  test("all views of one product land on one partition, in order", async () => {
    const id = crypto.randomUUID();
    for (let i = 1; i <= 20; i++) await producer.publish([{ product_id: id, count: i }]);
    const mine = (await readTopic(ctx.config, 70)).filter((m) => m.key?.toString() === id);
    expect(new Set(mine.map((m) => m.partition)).size).toBe(1);
    expect(mine.map((m) => decodeViewEvents(m.payload)![0]!.count)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  test("a batch's products sharing a partition travel as one message, on that same partition", async () => {
    const singles: string[] = Array.from({ length: 30 }, () => crypto.randomUUID());
    for (const id of singles) await producer.publish([{ product_id: id, count: 1 }]);
    const alone = new Map((await readTopic(ctx.config, 100)).filter((m) => singles.includes(m.key!.toString())).map((m) => [m.key!.toString(), m.partition]));
    expect(alone.size).toBe(30);
    const events = singles.map((id) => ({ product_id: id, count: 2 }));
    expect(toMessages(events, ctx.config.kafka.partitions).length).toBeLessThanOrEqual(ctx.config.kafka.partitions);
    await producer.publish(events);
    const grouped = (await readTopic(ctx.config, 100)).filter((m) => (decodeViewEvents(m.payload)?.length ?? 0) > 1);
    expect(grouped.flatMap((m) => decodeViewEvents(m.payload)!.map((e) => e.product_id)).sort()).toEqual([...singles].sort());
    for (const m of grouped) {
      for (const e of decodeViewEvents(m.payload)!) expect(m.partition).toBe(alone.get(e.product_id)!);
    }
  });
});
