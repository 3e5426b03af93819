import { describe, expect, test } from "bun:test";
import { Kafka, logLevel } from "kafkajs";
import { deadLetterTopic } from "../../src/kafka/dead-letter.ts";
import { metric, post, readTopic, seedProducts, testEnv, useStack, viewCounts, waitFor } from "./harness.ts";

// A poisoned topic: messages another producer wrote straight to the views topic, valid JSON of the right shape but
// with counts no sum can hold (4 000 products x 1e15 views: 4e18 each). They are copied to <topic>.dlq with why and
// where from, and counting goes on: an honest view sent after them is counted as usual.

describe("messages that cannot be counted exactly", () => {
  const stack = useStack(testEnv());

  test("three poisoned messages go to the dead-letter topic and an honest view after them is counted", async () => {
    const { ctx, api, worker } = stack;
    const [poisoned, honest] = await seedProducts(ctx.db, 2, "poison");
    const payload = JSON.stringify({ views: Array.from({ length: 4000 }, () => ({ product_id: poisoned, count: 1e15 })) });
    const producer = new Kafka({ clientId: "poisoner", brokers: [...ctx.config.kafka.brokers], logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    try {
      await producer.send({ topic: ctx.config.kafka.topic, acks: -1, messages: [0, 1, 2].map(() => ({ partition: 0, value: payload })) });
    } finally {
      await producer.disconnect();
    }
    expect((await post(`http://127.0.0.1:${api.port}/api/v1/products/view`, { product_id: honest })).status).toBe(202);
    await waitFor("the honest view counted", async () => (await viewCounts(ctx.db, [honest!])).get(honest!) === 1 || undefined, 30_000);
    expect((await viewCounts(ctx.db, [poisoned!])).get(poisoned!)).toBe(0);
    const letters = await readTopic({ ...ctx.config, kafka: { ...ctx.config.kafka, topic: deadLetterTopic(ctx.config.kafka.topic) } }, 3);
    expect(letters).toHaveLength(3);
    const headers = letters.map((m) => Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, String(v)])));
    expect(new Set(headers.map((h) => h["source-offset"])).size).toBe(3);
    for (const h of headers) {
      expect(h).toMatchObject({
        "source-topic": ctx.config.kafka.topic,
        "source-partition": "0",
        reason: "more than 1000000000000 views in one message",
      });
    }
    expect(letters.every((m) => m.payload.toString() === payload)).toBe(true);
    const workerUrl = `http://127.0.0.1:${worker.port}`;
    expect(await metric(workerUrl, "worker_dead_letters_total", '{result="written"}')).toBe(3);
  });
});
