import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Registry } from "../../src/metrics.ts";
import { createLogger } from "../../src/log.ts";
import { createProducer, type ViewProducer } from "../../src/ingest/producer.ts";
import { decodeViewEvent } from "../../src/domain/view.ts";
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
    const byKey = new Map(messages.map((m) => [m.key!.toString(), decodeViewEvent(m.payload)]));
    ids.forEach((id, i) => expect(byKey.get(id)).toEqual({ product_id: id, count: i + 1 }));
  });

  test("all views of one product land on one partition, in order", async () => {
    const id = crypto.randomUUID();
    for (let i = 1; i <= 20; i++) await producer.publish([{ product_id: id, count: i }]);
    const mine = (await readTopic(ctx.config, 70)).filter((m) => m.key?.toString() === id);
    expect(new Set(mine.map((m) => m.partition)).size).toBe(1);
    expect(mine.map((m) => decodeViewEvent(m.payload)!.count)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});
