import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { start as startWorker } from "../../src/entry/worker.ts";
import { createLogger } from "../../src/log.ts";
import { Registry } from "../../src/metrics.ts";
import { createProducer, type ViewProducer } from "../../src/ingest/producer.ts";
import { createTopicAdmin } from "../../src/kafka/admin.ts";
import { loadConfig, type Config } from "../../src/config.ts";
import { expectExactCounts, seedProducts, viewCounts } from "./harness/db.ts";
import { metric } from "./harness/http.ts";
import { describeGroup, recreateTopic, setGroupOffset } from "./harness/kafka.ts";
import { publishViews } from "./harness/load.ts";
import { prepare, runMain, testEnv, uniqueName } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

// The worker's offsets in Postgres against what Kafka's log and group say. One partition per topic, so each
// test knows exactly which offsets exist.
describe("worker offsets against the log", () => {
  const env = testEnv({ KAFKA_PARTITIONS: "1", FLUSH_INTERVAL_MS: "100" });
  let ctx: Awaited<ReturnType<typeof prepare>>;
  let ids: string[];
  const producers: ViewProducer[] = [];
  const producerFor = (config: Config) => {
    const p = createProducer(config.kafka, config.producer, createLogger("error", "test"), new Registry());
    producers.push(p);
    return p;
  };
  const own = (extra: Record<string, string> = {}) =>
    loadConfig({ ...env, KAFKA_TOPIC: uniqueName("offsets"), KAFKA_GROUP_ID: uniqueName("offsets"), ...extra });

  beforeAll(async () => {
    ctx = await prepare(env);
    ids = await seedProducts(ctx.db, 50, "offsets");
  });
  afterAll(async () => {
    for (const p of producers) await bounded("producer.close", p.close());
    await bounded("ctx.db.close", ctx.db.close());
  });

  test("Kafka's committed offset ahead of Postgres (e.g. Postgres restored from a backup): the worker seeks back and counts every view", async () => {
    const config = own();
    await prepare({ ...env, KAFKA_TOPIC: config.kafka.topic });
    const producer = producerFor(config);
    const before = await viewCounts(ctx.db, ids);
    let worker = await startWorker(config);
    const first = await publishViews((e) => producer.publish(e), ids, 10, { perCall: 1, concurrency: 1 });
    await expectExactCounts(ctx.db, before, first, ids);
    await bounded("worker.stop", worker.stop());
    // 20 views the worker never saw; then the group's offset jumps past them.
    const unseen = await publishViews((e) => producer.publish(e), ids, 20, { perCall: 1, concurrency: 1 });
    const end = (await createTopicAdmin(config.kafka).watermarks()).get(0)!.high;
    await setGroupOffset(config, config.worker.groupId, 0, end);
    worker = await startWorker(config);
    try {
      const after = await publishViews((e) => producer.publish(e), ids, 5, { perCall: 1, concurrency: 1 });
      const all = new Map(ids.map((id) => [id, (first.get(id) ?? 0) + (unseen.get(id) ?? 0) + (after.get(id) ?? 0)]));
      await expectExactCounts(ctx.db, before, all, ids);
      expect(await metric(`http://127.0.0.1:${worker.port}`, "worker_gap_seeks_total")).toBeGreaterThan(0);
    } finally {
      await bounded("worker.stop", worker.stop());
    }
  });

  test("the topic recreated while Postgres keeps its offsets: the partition is held and reported, nothing dropped, and rebase-offsets resumes it", async () => {
    const config = own();
    await prepare({ ...env, KAFKA_TOPIC: config.kafka.topic });
    const before = await viewCounts(ctx.db, ids);
    let worker = await startWorker(config);
    const first = await publishViews((e) => producerFor(config).publish(e), ids, 10, { perCall: 1, concurrency: 1 });
    await expectExactCounts(ctx.db, before, first, ids);
    await bounded("worker.stop", worker.stop());

    await recreateTopic(config);
    // New views in the new topic start at offset 0, below the 10 stored: skipping them would lose them.
    const afterReset = await publishViews((e) => producerFor(config).publish(e), ids, 5, { perCall: 1, concurrency: 1 });
    worker = await startWorker(config);
    const url = `http://127.0.0.1:${worker.port}`;
    try {
      await waitFor(
        "partition held and reported",
        async () => (await metric(url, "worker_offset_problem", '{kind="topic_changed",partition="0"}')) === 1 || undefined,
      );
      const ready = await fetch(`${url}/ready`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { held: { kind: string }[] }).held[0]!.kind).toBe("topic_changed");
      const dry = await runMain({ ...env, KAFKA_TOPIC: config.kafka.topic }, "rebase-offsets");
      expect(dry.code).toBe(0);
      expect(dry.out).toMatch(/partition 0: topic_changed \(topic id [0-9a-f-]{36} -> [0-9a-f-]{36}\): stored next offset 10, log 0\.\.5/);
      expect(await viewCounts(ctx.db, ids)).toEqual(await viewCounts(ctx.db, ids)); // nothing applied meanwhile
      expect(await runMain({ ...env, KAFKA_TOPIC: config.kafka.topic }, "rebase-offsets", "--apply")).toMatchObject({ code: 0 });
      const all = new Map(ids.map((id) => [id, (first.get(id) ?? 0) + (afterReset.get(id) ?? 0)]));
      await expectExactCounts(ctx.db, before, all, ids);
      await waitFor("worker ready again", async () => (await fetch(`${url}/ready`)).status === 200 || undefined);
      expect(await metric(url, "worker_offset_problem", '{kind="topic_changed",partition="0"}')).toBe(0);
    } finally {
      await bounded("worker.stop", worker.stop());
    }
  });

  test("a worker that stops leaves its group before stop() returns, instead of after its session times out", async () => {
    // Two partitions, two workers: each holds one. librdkafka sends LeaveGroup only once the revocation that
    // unsubscribing starts has been served in a poll; without that the stopped worker stays a member for the
    // session timeout (6 s), and the group's rebalance, with nobody fetching, waits for it.
    const config = own({ KAFKA_PARTITIONS: "2" });
    await prepare({ ...env, KAFKA_TOPIC: config.kafka.topic, KAFKA_PARTITIONS: "2" });
    const first = await startWorker(config);
    const second = await startWorker(config);
    let firstStopped = false;
    try {
      await waitFor(
        "both workers in the group",
        async () => {
          const g = await describeGroup(config, config.worker.groupId);
          return (g.state === "Stable" && g.members === 2) || undefined;
        },
        60_000,
        200,
      );
      await bounded("first.stop", first.stop());
      firstStopped = true;
      // Read at once: a member that did not leave is still listed for seconds.
      expect((await describeGroup(config, config.worker.groupId)).members).toBe(1);
    } finally {
      if (!firstStopped) await bounded("first.stop", first.stop());
      await bounded("second.stop", second.stop());
    }
  });

  test("paused behind a hung flush longer than max.poll.interval.ms, the worker stays in its group", async () => {
    const config = own({ MAX_PENDING_PRODUCTS: "5", FLUSH_MAX_PRODUCTS: "5", KAFKA_MAX_POLL_INTERVAL_MS: "7000" });
    await prepare({ ...env, KAFKA_TOPIC: config.kafka.topic });
    const producer = producerFor(config);
    const before = await viewCounts(ctx.db, ids);
    const worker = await startWorker(config);
    const url = `http://127.0.0.1:${worker.port}`;
    // A first view counted: the partition's stored offset is loaded before the lock below is taken.
    await producer.publish([{ product_id: ids[0]!, count: 1 }]);
    await expectExactCounts(ctx.db, before, new Map([[ids[0]!, 1]]), ids);
    const locked = Promise.withResolvers<void>();
    const release = Promise.withResolvers<void>();
    // Flushes write view_offsets: holding an exclusive lock on it makes every flush hang.
    const holder = ctx.db.sql.begin(async (tx) => {
      await tx`LOCK TABLE view_offsets IN ACCESS EXCLUSIVE MODE`;
      locked.resolve();
      await release.promise;
    });
    try {
      await locked.promise;
      const revokesBefore = await metric(url, "worker_rebalance_events_total", '{action="revoke",event="PreRebalance"}');
      // One view per product: distinct products fill the pending map (limit 5) behind the hung flush.
      for (const id of ids) await producer.publish([{ product_id: id, count: 1 }]);
      const acked = new Map(ids.map((id, i) => [id, i === 0 ? 2 : 1]));
      await waitFor("fetching paused", async () => (await metric(url, "worker_paused")) === 1 || undefined);
      // Exposure, not a wait for something to happen: longer than max.poll.interval.ms (7 s) plus librdkafka's
      // 1 s check. A consumer that stopped polling is evicted within it, and its partitions revoked.
      await Bun.sleep(9000);
      expect(await describeGroup(config, config.worker.groupId)).toEqual({ state: "Stable", members: 1 });
      release.resolve();
      await holder;
      await expectExactCounts(ctx.db, before, acked, ids);
      expect(await metric(url, "worker_rebalance_events_total", '{action="revoke",event="PreRebalance"}')).toBe(revokesBefore);
    } finally {
      release.resolve();
      await holder.catch(() => {});
      await bounded("worker.stop", worker.stop());
    }
  });
});
