import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { start as startApi } from "../../src/entry/api.ts";
import { start as startWorker } from "../../src/entry/worker.ts";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { Registry } from "../../src/metrics.ts";
import { createProducer } from "../../src/ingest/producer.ts";
import {
  expectExactCounts, managedStack, post, prepare, publishViews, readTopic, seedProducts, spawnService, stack, testEnv,
  uniqueName, viewCounts, waitFor,
} from "./harness.ts";

// These stop and start the real Kafka broker and Postgres server that scripts/test.sh started.
describe.skipIf(!managedStack)("faults on the real servers", () => {
  const env = testEnv({ INGEST_TIMEOUT_MS: "2000", FLUSH_INTERVAL_MS: "100" });
  let ctx: Awaited<ReturnType<typeof prepare>>;
  let ids: string[];

  beforeAll(async () => {
    ctx = await prepare(env);
    ids = await seedProducts(ctx.db, 50, "faults");
  });
  afterAll(async () => {
    // Whatever happened, leave both servers running for the tests after these.
    stack("start", "kafka");
    stack("start", "postgres");
    await ctx.db.close();
  });

  test("Kafka away: POST /view answers 503 with Retry-After within its deadline, then recovers by itself", async () => {
    const api = await startApi(ctx.config);
    const worker = await startWorker(loadConfig({ ...env, KAFKA_GROUP_ID: uniqueName("faults") }));
    const url = `http://127.0.0.1:${api.port}/api/v1/products/view`;
    try {
      expect((await post(url, { product_id: ids[0] })).status).toBe(202);
      const before = await viewCounts(ctx.db, [ids[1]!]);
      stack("stop", "kafka");
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const res = await post(url, { product_id: ids[1] });
        const ms = performance.now() - t0;
        statuses.push(res.status);
        if (res.status === 503) {
          expect(res.headers.get("retry-after")).toBe("1");
          expect(((await res.json()) as { code: string }).code).toBe("ingest_unavailable");
        }
        // INGEST_TIMEOUT_MS=2000: never a hang past the deadline (plus scheduling slack).
        expect(ms).toBeLessThan(2000 + 1500);
      }
      expect(statuses.every((s) => s === 503)).toBe(true);
      expect((await fetch(`http://127.0.0.1:${api.port}/ready`)).status).toBe(503);
      stack("start", "kafka");
      const accepted = await waitFor("202 after Kafka returned", async () => {
        const res = await post(url, { product_id: ids[1] });
        return res.status === 202 ? true : undefined;
      }, 60_000, 250);
      expect(accepted).toBe(true);
      // The worker reconnected alone; the 503'd views may or may not exist, the accepted one must be counted.
      await waitFor("worker counted after recovery", async () => (await viewCounts(ctx.db, [ids[1]!])).get(ids[1]!)! > before.get(ids[1]!)!, 60_000);
    } finally {
      stack("start", "kafka");
      await api.stop();
      await worker.stop();
    }
  });

  test("Postgres away for several seconds: the worker retries its flush and the counts come out exact", async () => {
    const groupEnv = { ...env, KAFKA_GROUP_ID: uniqueName("faults") };
    const worker = await spawnService("worker", groupEnv);
    const producer = createProducer(ctx.config.kafka, ctx.config.producer, createLogger("error", "test"), new Registry());
    try {
      // Replay everything earlier tests produced first, so `before` is a settled baseline.
      await Bun.sleep(2000);
      const before = await viewCounts(ctx.db, ids);
      const publishing = publishViews((e) => producer.publish(e), ids, 8000, { perCall: 20, concurrency: 2, paceMs: 5 });
      await Bun.sleep(500);
      stack("stop", "postgres");
      await Bun.sleep(4000);
      stack("start", "postgres");
      const acked = await publishing;
      await expectExactCounts(ctx.db, before, acked, ids);
      expect(worker.proc.exitCode).toBeNull();
    } finally {
      stack("start", "postgres");
      await producer.close();
      await worker.kill("SIGTERM");
    }
  });

  test("SIGTERM to the API during a burst: every view that got 202 is in Kafka, and the API exits 0", async () => {
    const topicEnv = { ...env, KAFKA_TOPIC: uniqueName("views-burst") };
    const { config, db } = await prepare(topicEnv);
    const api = await spawnService("api", topicEnv);
    const url = `${api.url}/api/v1/products/view`;
    let accepted = 0;
    let stopSent = false;
    const burst = Array.from({ length: 16 }, async () => {
      for (let i = 0; i < 200; i++) {
        try {
          const res = await post(url, { product_id: ids[i % ids.length] });
          if (res.status === 202) accepted++;
          else expect([503]).toContain(res.status);
        } catch {
          if (stopSent) return; // connection refused once the server stopped listening
          throw new Error("request failed before SIGTERM");
        }
      }
    });
    await waitFor("burst under way", () => accepted > 300 || undefined, 30_000, 5);
    stopSent = true;
    api.proc.kill("SIGTERM");
    await Promise.all(burst);
    expect(await api.proc.exited).toBe(0);
    const messages = await readTopic(config, accepted);
    expect(accepted).toBeGreaterThan(300);
    expect(messages.length).toBe(accepted);
    await db.close();
  });
});

describe("top-N freshness", () => {
  test("a flush refreshes GET /top through NOTIFY, with no periodic refresh due", async () => {
    // TOP_REFRESH_MS=60000: only the worker's NOTIFY can make the new leader appear within the wait below.
    const env = testEnv({ TOP_REFRESH_MS: "60000", FLUSH_INTERVAL_MS: "100" });
    const { config, db } = await prepare(env);
    const [id] = await seedProducts(db, 1, "fresh");
    const api = await startApi(config);
    const worker = await startWorker(config);
    try {
      const top = async () => (await (await fetch(`http://127.0.0.1:${api.port}/api/v1/products/top?limit=1`)).json()) as Array<{ id: string; view_count: number }>;
      const leader = (await top())[0]?.view_count ?? 0;
      await post(`http://127.0.0.1:${api.port}/api/v1/products/views`, { views: [{ product_id: id, count: 1000 }, { product_id: id, count: Math.min(leader + 1, 1000) }] });
      const needed = leader + 1;
      if (needed > 1000) {
        for (let sent = 1000; sent < needed; sent += 1000) {
          await post(`http://127.0.0.1:${api.port}/api/v1/products/views`, { views: [{ product_id: id, count: 1000 }] });
        }
      }
      await waitFor("new leader on /top", async () => (await top())[0]?.id === id, 10_000, 50);
    } finally {
      await api.stop();
      await worker.stop();
      await db.close();
    }
  });
});
