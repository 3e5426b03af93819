import { describe, expect, test } from "bun:test";
import type { Watermarks } from "../../../src/kafka/admin.ts";
import { createLogger } from "../../../src/log.ts";
import { Registry } from "../../../src/metrics.ts";
import { createCoalescer } from "../../../src/worker/coalescer.ts";
import { createOffsetGuard, type OffsetStore } from "../../../src/worker/offset-guard.ts";
import type { StoredOffset } from "../../../src/db/offsets.ts";
import { until } from "../until.ts";

// The offset guard without Kafka or Postgres: a store whose answers the test sets, and the real coalescer.
const OLD = "11111111-1111-4111-8111-111111111111";
const NEW = "22222222-2222-4222-8222-222222222222";
const log = createLogger("silent", "test");

function world(stored: StoredOffset, topicId: string, marks: Watermarks) {
  const state = { stored, topicId, marks, failures: 0 };
  const store: OffsetStore = {
    async loadOffsets(partitions) {
      if (state.failures > 0 && state.failures--) throw new Error("postgres away");
      return new Map(partitions.map((p) => [p, { ...state.stored }]));
    },
    watermarks: async () => new Map([[0, { ...state.marks }]]),
    topicId: async () => state.topicId,
  };
  const coalescer = createCoalescer();
  const forgotten: number[] = [];
  const metrics = new Registry();
  const guard = createOffsetGuard(store, coalescer, (p) => void (coalescer.drop(p), forgotten.push(p)), log, metrics);
  return { state, coalescer, guard, forgotten, metrics };
}

describe("offset guard", () => {
  test("offsets that fit the log give the partition its base", async () => {
    const w = world({ next: 40, topicId: OLD }, OLD, { low: 0, high: 100 });
    await w.guard.ensureBases([0], () => false);
    expect(w.coalescer.expected(0)).toBe(40);
    expect(w.guard.held()).toEqual([]);
    expect(w.guard.topicId()).toBe(OLD);
  });

  test("offsets stored for another topic id hold the partition (no base, metric, held list) until they are re-based", async () => {
    const w = world({ next: 40, topicId: OLD }, NEW, { low: 0, high: 7 });
    await w.guard.ensureBases([0], () => false);
    expect(w.coalescer.hasBase(0)).toBe(false);
    expect(w.guard.isHeld(0)).toBe(true);
    expect(w.guard.held()[0]).toMatchObject({ kind: "topic_changed", partition: 0, stored: 40 });
    expect(w.metrics.render()).toContain("worker_held_partitions 1");
    // Nothing changes until an operator re-bases: a re-check finds the same problem.
    expect(await w.guard.recheckHeld(performance.now() + 10_000)).toEqual([]);
    expect(w.guard.isHeld(0)).toBe(true);
    // `rebase-offsets --apply`: the stored offset moves to the new log's start, under the new topic id.
    w.state.stored = { next: 0, topicId: NEW };
    expect(await w.guard.recheckHeld(performance.now() + 20_000)).toEqual([{ partition: 0, next: 0 }]);
    expect(w.guard.isHeld(0)).toBe(false);
    expect(w.coalescer.expected(0)).toBe(0);
    expect(w.metrics.render()).toContain("worker_held_partitions 0");
  });

  test("replayed messages under a log end that went back below the stored offset (the log was replaced) hold the partition", async () => {
    const w = world({ next: 500, topicId: null }, OLD, { low: 0, high: 900 });
    await w.guard.ensureBases([0], () => false);
    expect(w.coalescer.expected(0)).toBe(500);
    w.state.marks = { low: 0, high: 30 }; // the log restarted below what Postgres counted
    w.guard.onDuplicate(performance.now() + 10_000);
    await until("partition held", () => w.guard.isHeld(0));
    expect(w.guard.held()[0]!.kind).toBe("log_reset");
    expect(w.forgotten).toEqual([0]);
  });

  test("a store that cannot answer is retried until it can; no base is set meanwhile", async () => {
    const w = world({ next: 5, topicId: OLD }, OLD, { low: 0, high: 10 });
    w.state.failures = 2;
    await w.guard.ensureBases([0], () => false);
    expect(w.state.failures).toBe(0);
    expect(w.coalescer.expected(0)).toBe(5);
  });

  test("while stopping, a store that cannot answer ends the wait with its error", async () => {
    const w = world({ next: 5, topicId: OLD }, OLD, { low: 0, high: 10 });
    w.state.failures = 100;
    await expect(w.guard.ensureBases([0], () => true)).rejects.toThrow("postgres away");
  });
});
