import { describe, expect, test } from "bun:test";
import { Kafka, logLevel } from "kafkajs";
import { readViewMessage } from "../../src/domain/view.ts";
import { deadLetterTopic } from "../../src/kafka/dead-letter.ts";
import { seedProducts, viewCounts } from "./harness/db.ts";
import { metric, post } from "./harness/http.ts";
import { readTopic } from "./harness/kafka.ts";
import { testEnv, useStack } from "./harness/stack.ts";
import { waitFor } from "./harness/wait.ts";

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
    expect(letters.every((m) => m.payload?.toString() === payload)).toBe(true);
    const workerUrl = `http://127.0.0.1:${worker.port}`;
    expect(await metric(workerUrl, "worker_dead_letters_total", '{result="written"}')).toBe(3);
  });

  // A count Postgres refuses (22003: a product already at bigint's maximum) fails the whole flush statement, and
  // retrying the same batch cannot cure it: the product's views are set aside on the dead-letter topic, the rest
  // of the batch is counted, and counting goes on.
  test("views Postgres refuses to add (a count at bigint's maximum) are set aside; the rest of their batch is counted", async () => {
    const { ctx, api, worker } = stack;
    const [full, a, b] = await seedProducts(ctx.db, 3, "refused");
    const max = "9223372036854775000";
    await ctx.db.sql`UPDATE products SET view_count = ${max}::bigint WHERE id = ${full!}`;
    // Gone at the end, whatever happens: the suite's later tests rank against every product of the database.
    try {
      const url = `http://127.0.0.1:${api.port}/api/v1/products/views`;
      const sent = await post(url, {
        views: [
          { product_id: full, count: 1000 },
          { product_id: a, count: 3 },
        ],
      });
      expect(sent.status).toBe(202);
      expect((await post(url, { views: [{ product_id: b, count: 1 }] })).status).toBe(202);
      await waitFor(
        "the other views counted",
        async () => {
          const counts = await viewCounts(ctx.db, [a!, b!]);
          return (counts.get(a!) === 3 && counts.get(b!) === 1) || undefined;
        },
        30_000,
      );
      const [row] = await ctx.db.sql<{ n: string }[]>`SELECT view_count::text AS n FROM products WHERE id = ${full!}`;
      expect(row!.n).toBe(max);
      const letters = await readTopic({ ...ctx.config, kafka: { ...ctx.config.kafka, topic: deadLetterTopic(ctx.config.kafka.topic) } }, 4);
      const setAside = letters.filter((m) => String(m.headers?.reason ?? "").startsWith("refused by Postgres"));
      expect(setAside).toHaveLength(1);
      expect(String(setAside[0]!.headers!.reason)).toContain("22003");
      // A message of the views topic's own form: once the cause is fixed, an operator can replay it as it is.
      expect(readViewMessage(setAside[0]!.payload)).toEqual({ views: [{ product_id: full!, count: 1000 }], keyed: [], at: null });
      expect(setAside[0]!.headers).toMatchObject({ "source-partition": expect.anything(), "source-offset": expect.anything() });
      const workerUrl = `http://127.0.0.1:${worker.port}`;
      expect(await metric(workerUrl, "worker_views_set_aside_total", '{letter="written"}')).toBe(1000);
    } finally {
      await ctx.db.sql`DELETE FROM products WHERE id = ${full!}`;
    }
  });
});
