import { describe, expect, test } from "bun:test";
import type { Message } from "../../../src/kafka/ffi-consumer.ts";
import { loadConfig } from "../../../src/config.ts";
import { encodeViewEvents } from "../../../src/domain/view.ts";
import { createLogger } from "../../../src/log.ts";
import { Registry } from "../../../src/metrics.ts";
import type { Batch } from "../../../src/worker/coalescer.ts";
import { startConsumer, type Source, type Store } from "../../../src/worker/consumer.ts";
import { until } from "../until.ts";

// The consume loop without Kafka or Postgres: an in-memory log of one partition, and a store that applies
// flushes with the writer's fence rule. What is tested is the loop's own decisions.
const config = loadConfig({ FLUSH_INTERVAL_MS: "10", MAX_PENDING_PRODUCTS: "2", FLUSH_MAX_PRODUCTS: "1" });
const TOPIC_ID = "11111111-1111-4111-8111-111111111111";
const id = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

/** The group as its coordinator would list it: client ids of fake consumers that have not left. */
const members = new Set<string>();
let instances = 0;

function fakeKafka(messages: number, startAt: number) {
  const log: Message[] = Array.from({ length: messages }, (_, offset) => ({
    topic: config.kafka.topic,
    partition: 0,
    offset,
    payload: encodeViewEvents([{ product_id: id(offset), count: 1 }]),
    key: null,
  }));
  const calls = { recv: 0, recvWhilePaused: 0, seeks: [] as number[] };
  let position = startAt;
  let paused = false;
  let subscribed = true;
  const clientId = `fake-${++instances}`;
  members.add(clientId);
  const source: Source = {
    clientId,
    subscribe: async () => {},
    async recvBatch() {
      calls.recv++;
      if (paused) calls.recvWhilePaused++;
      await Bun.sleep(1);
      if (paused) return [];
      const out = log.slice(position, position + 1); // one at a time: the pending map fills while a flush hangs
      position += out.length;
      return out;
    },
    pause: () => void (paused = true),
    resume: () => void (paused = false),
    seek: (_t, _p, o) => void (calls.seeks.push(o), (position = o)),
    commit: async () => {},
    onEvents: () => {},
    // librdkafka's revocation after unsubscribe() is served in a poll; this fake serves it at once.
    assignment: () => (subscribed ? [{ topic: config.kafka.topic, partitionOffset: [{ partition: 0, offset: -1000 }] }] : []),
    unsubscribe: () => void ((subscribed = false), members.delete(clientId)),
    disconnect: async () => {},
  };
  return { source, calls, isPaused: () => paused };
}

function fakeStore(stored: number) {
  const counts = new Map<string, number>();
  const deadLetters: { partition: number; offset: number; reason: string }[] = [];
  let next = stored;
  let gate: Promise<void> = Promise.resolve();
  const store: Store = {
    loadOffsets: async () => new Map([[0, { next, topicId: TOPIC_ID }]]),
    async flush(batch: Batch) {
      await gate;
      const fenced = [];
      let views = 0;
      for (const s of batch.slices) {
        if (s.base !== next) {
          fenced.push({ partition: s.partition, stored: next });
          continue;
        }
        for (const [k, n] of s.counts) counts.set(k, (counts.get(k) ?? 0) + n);
        next = s.next;
        views += s.views;
      }
      return { rowsUpdated: 0, unknownProducts: 0, fenced, views, repeats: 0, mismatched: 0, skipped: 0, historyRows: 0 };
    },
    sampleUnknown: async () => [],
    deadLetter: async ({ partition, offset, reason }) => void deadLetters.push({ partition, offset, reason }),
    groupMembers: async () => [...members],
    watermarks: async () => new Map([[0, { low: 0, high: 1_000 }]]),
    topicId: async () => TOPIC_ID,
  };
  return { store, counts, deadLetters, stored: () => next, block: (until: Promise<void>) => void (gate = until) };
}

/** The loop under test, quiet, with its own metrics unless given some. */
function start(
  makeSource: () => Source,
  store: Store,
  opts: { metrics?: Registry; subscribeAttempts?: number; stallMs?: number; stallCheckMs?: number } = {},
) {
  const { metrics = new Registry(), ...rest } = opts;
  return startConsumer(config.kafka, config.worker, makeSource, store, createLogger("silent", "t"), metrics, rest);
}

describe("consume loop", () => {
  test("keeps polling Kafka while fetching is paused, so the group does not evict it", async () => {
    const kafka = fakeKafka(10, 0);
    const pg = fakeStore(-1);
    const release = Promise.withResolvers<void>();
    pg.block(release.promise); // Postgres hangs: flushes never finish, the pending map fills up
    const c = start(() => kafka.source, pg.store);
    try {
      await until("fetching paused", kafka.isPaused);
      await until("20 polls while paused", () => kafka.calls.recvWhilePaused >= 20);
      release.resolve();
      await until("every view counted", () => pg.counts.size === 10);
    } finally {
      release.resolve();
      await c.stop();
    }
  });

  test("a message past the expected offset makes it seek back, and the skipped views are counted", async () => {
    // Postgres has counted up to offset 3; Kafka's position is at 6 (its committed offset ran ahead).
    const kafka = fakeKafka(10, 6);
    const pg = fakeStore(3);
    const c = start(() => kafka.source, pg.store);
    try {
      await until("offsets 3..9 counted", () => pg.stored() === 10);
      expect(kafka.calls.seeks[0]).toBe(3);
      expect([...pg.counts.keys()].sort()).toEqual([3, 4, 5, 6, 7, 8, 9].map(id));
    } finally {
      await c.stop();
    }
  });

  test("a subscribe that keeps failing ends the consumer: crashed rejects, so the process exits non-zero", async () => {
    const kafka = fakeKafka(0, 0);
    kafka.source.subscribe = async () => {
      throw new Error("broker says no");
    };
    const c = start(() => kafka.source, fakeStore(-1).store, { subscribeAttempts: 2 });
    await expect(c.crashed).rejects.toThrow(/cannot subscribe/);
    await c.stop();
  });

  test("a partition it holds that sits still is sought back first, then its Kafka consumer is replaced, and every view is counted", async () => {
    // The first consumer goes quiet after offset 4 (as librdkafka did once after a broker restart: no error,
    // no assignment back) and a seek does not wake it; the log holds 10 messages. The replacement starts from
    // what Postgres stored.
    const stuck = fakeKafka(10, 0);
    const recv = stuck.source.recvBatch.bind(stuck.source);
    let served = 0;
    stuck.source.recvBatch = async (n, t) => (served >= 5 ? (await Bun.sleep(1), []) : (served++, recv(n, t)));
    const pg = fakeStore(-1);
    pg.store.watermarks = async () => new Map([[0, { low: 0, high: 10 }]]);
    let made = 0;
    let fresh: ReturnType<typeof fakeKafka> | undefined;
    const metrics = new Registry();
    const c = start(
      () => {
        if (made++ === 0) return stuck.source;
        fresh = fakeKafka(10, Math.max(0, pg.stored()));
        return fresh.source;
      },
      pg.store,
      { metrics, stallMs: 200, stallCheckMs: 50 },
    );
    try {
      await until("all ten views counted", () => pg.counts.size === 10);
      expect(made).toBe(2);
      expect(stuck.calls.seeks).toEqual([5]);
      expect(metrics.render()).toContain('worker_stalls_total{response="seek"} 1');
      expect(metrics.render()).toContain('worker_stalls_total{response="replace"} 1');
    } finally {
      await c.stop();
    }
  });

  test("a partition it holds that sits still until a seek keeps its Kafka consumer", async () => {
    // librdkafka's fetch position for the partition is stuck; a seek to the counted offset gets it going.
    const kafka = fakeKafka(10, 0);
    const recv = kafka.source.recvBatch.bind(kafka.source);
    let stuck = true;
    kafka.source.recvBatch = async (n, t) => (stuck && kafka.calls.recv >= 5 ? (kafka.calls.recv++, await Bun.sleep(1), []) : recv(n, t));
    const seek = kafka.source.seek.bind(kafka.source);
    kafka.source.seek = (...args) => ((stuck = false), seek(...args));
    const pg = fakeStore(-1);
    pg.store.watermarks = async () => new Map([[0, { low: 0, high: 10 }]]);
    let made = 0;
    const metrics = new Registry();
    const c = start(() => (made++, kafka.source), pg.store, { metrics, stallMs: 200, stallCheckMs: 50 });
    try {
      await until("all ten views counted", () => pg.counts.size === 10);
      expect(made).toBe(1);
      expect(metrics.render()).toContain('worker_stalls_total{response="seek"} 1');
    } finally {
      await c.stop();
    }
  });

  test("a partition another consumer of the group holds is left to it for two windows, then this one rejoins", async () => {
    // librdkafka says this consumer holds partition 1 only, so the still partition 0 is another worker's to
    // fix; only after NOT_MINE_STRIKES windows (nobody did) does this worker replace its consumer, making the
    // group assign afresh.
    const idle = fakeKafka(10, 0);
    idle.source.recvBatch = async () => (await Bun.sleep(1), []);
    let subscribed = true;
    idle.source.unsubscribe = () => void ((subscribed = false), members.delete(idle.source.clientId));
    idle.source.assignment = () => (subscribed ? [{ topic: config.kafka.topic, partitionOffset: [{ partition: 1, offset: -1000 }] }] : []);
    const pg = fakeStore(-1);
    pg.store.watermarks = async () => new Map([[0, { low: 0, high: 10 }]]);
    let made = 0;
    const metrics = new Registry();
    const c = start(() => (made++ === 0 ? idle.source : fakeKafka(10, 0).source), pg.store, { metrics, stallMs: 100, stallCheckMs: 20 });
    try {
      await until("all ten views counted", () => pg.counts.size === 10);
      expect(made).toBe(2);
      expect(idle.calls.seeks).toEqual([]);
      expect(metrics.render()).toContain('worker_stalls_total{response="wait"} 2');
      expect(metrics.render()).toContain('worker_stalls_total{response="replace"} 1');
    } finally {
      await c.stop();
    }
  });

  test("a consumer that holds nothing while partitions sit still has lost its assignment: it rejoins at the first window", async () => {
    // As librdkafka did after a 10 s Kafka stop: no error, an empty assignment, nothing fetched.
    const lost = fakeKafka(10, 0);
    lost.source.recvBatch = async () => (await Bun.sleep(1), []);
    lost.source.assignment = () => [];
    const pg = fakeStore(-1);
    pg.store.watermarks = async () => new Map([[0, { low: 0, high: 10 }]]);
    let made = 0;
    const metrics = new Registry();
    const c = start(() => (made++ === 0 ? lost.source : fakeKafka(10, 0).source), pg.store, { metrics, stallMs: 100, stallCheckMs: 20 });
    try {
      await until("all ten views counted", () => pg.counts.size === 10);
      expect(made).toBe(2);
      expect(metrics.render()).toContain('worker_stalls_total{response="replace"} 1');
      expect(metrics.render()).not.toContain('response="wait"');
    } finally {
      await c.stop();
    }
  });

  test("a consumer taken out of the group is polled until librdkafka has revoked its partitions, then disconnected", async () => {
    // Unpolled, librdkafka never completes the revocation and never sends LeaveGroup: the group would wait for
    // this member's session to time out before anyone fetched again.
    const kafka = fakeKafka(3, 0);
    let holds = true;
    let unsubscribed = false;
    let pollsAfterUnsubscribe = 0;
    let disconnectedHolding = null as boolean | null;
    const recv = kafka.source.recvBatch.bind(kafka.source);
    kafka.source.unsubscribe = () => void (unsubscribed = true);
    kafka.source.recvBatch = async (n, t) => {
      // The revocation is served in the third poll, and LeaveGroup sent with it.
      if (unsubscribed && ++pollsAfterUnsubscribe === 3) (holds = false), members.delete(kafka.source.clientId);
      return recv(n, t);
    };
    kafka.source.assignment = () => (holds ? [{ topic: config.kafka.topic, partitionOffset: [{ partition: 0, offset: -1000 }] }] : []);
    kafka.source.disconnect = async () => void (disconnectedHolding = holds);
    const pg = fakeStore(-1);
    const c = start(() => kafka.source, pg.store);
    await until("three views counted", () => pg.counts.size === 3);
    await c.stop();
    expect(pollsAfterUnsubscribe).toBe(3);
    expect(disconnectedHolding).toBe(false);
  });

  test("a consumer that lost its assignment is polled until the group no longer lists it, then disconnected", async () => {
    // librdkafka after a broker restart: it holds nothing, yet it is still a member (a rebalance waits on it)
    // until polls let it finish and send LeaveGroup, here in the fourth.
    const kafka = fakeKafka(3, 0);
    let unsubscribed = false;
    let polls = 0;
    let disconnectedAsMember = null as boolean | null;
    const recv = kafka.source.recvBatch.bind(kafka.source);
    kafka.source.unsubscribe = () => void (unsubscribed = true);
    kafka.source.recvBatch = async (n, t) => {
      if (unsubscribed && ++polls === 4) members.delete(kafka.source.clientId);
      return recv(n, t);
    };
    kafka.source.disconnect = async () => void (disconnectedAsMember = members.has(kafka.source.clientId));
    const pg = fakeStore(-1);
    const c = start(() => kafka.source, pg.store);
    await until("three views counted", () => pg.counts.size === 3);
    kafka.source.assignment = () => [];
    await c.stop();
    expect(polls).toBe(4);
    expect(disconnectedAsMember).toBe(false);
  });

  test("a paused partition is not a stall", async () => {
    const kafka = fakeKafka(10, 0);
    const pg = fakeStore(-1);
    const release = Promise.withResolvers<void>();
    pg.block(release.promise); // flushes hang: the pending map fills, fetching pauses on purpose
    pg.store.watermarks = async () => new Map([[0, { low: 0, high: 10 }]]);
    let made = 0;
    const c = start(() => (made++, kafka.source), pg.store, { stallMs: 100, stallCheckMs: 20 });
    try {
      await until("fetching paused", kafka.isPaused);
      // Ten stall windows long: a detector that ignored the pause would have replaced the consumer by now.
      await until("polls for 1 s while paused", () => kafka.calls.recvWhilePaused >= 400);
      expect(made).toBe(1);
    } finally {
      release.resolve();
      await c.stop();
    }
  });
});
