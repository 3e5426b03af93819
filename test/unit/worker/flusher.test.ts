import { describe, expect, test } from "bun:test";
import { createLogger } from "../../../src/log.ts";
import { type Batch, type Coalescer, createCoalescer } from "../../../src/worker/coalescer.ts";
import { POLL_MAX_MS, pollWaitMs, startFlusher, waitAfter } from "../../../src/worker/flusher.ts";
import { until } from "../until.ts";

const log = createLogger("silent", "test");
const id = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

describe("flusher", () => {
  test("a write that never settles is abandoned at its deadline and the same batch is written again", async () => {
    // The driver can leave a call pending forever when Postgres restarts (postgres.js 3.4.9): the flusher must
    // not wait on it, or the worker stops applying anything without a word.
    const coalescer = createCoalescer();
    coalescer.setBase(0, 0);
    coalescer.add(0, 0, [{ product_id: id(1), count: 3 }]);
    const seen: Batch[] = [];
    const failures: string[] = [];
    const flusher = startFlusher({
      coalescer,
      write(batch) {
        seen.push(batch);
        return seen.length === 1 ? new Promise<void>(() => {}) : Promise.resolve();
      },
      intervalMs: 5,
      timeoutMs: 50,
      log,
      onFailure: (err) => void failures.push(String(err)),
    });
    try {
      await until("a second write", () => seen.length >= 2);
      expect(seen[1]).toBe(seen[0]!); // the very same batch: same base, same offsets, same counts
      expect(failures[0]).toContain("did not settle within 50 ms");
      expect(seen[0]!.slices[0]).toMatchObject({ partition: 0, base: 0, next: 1, views: 3 });
    } finally {
      await flusher.stop(1);
    }
  });

  test("stop() ends even when every write hangs, reporting what it could not write", async () => {
    const coalescer = createCoalescer();
    coalescer.setBase(0, 0);
    coalescer.add(0, 0, [{ product_id: id(2), count: 1 }]);
    const flusher = startFlusher({
      coalescer,
      write: () => new Promise<void>(() => {}),
      intervalMs: 5,
      timeoutMs: 20,
      log,
      onFailure: () => {},
    });
    const stopped = await Promise.race([flusher.stop(2), Bun.sleep(10_000).then(() => "hung" as const)]);
    expect(stopped).toEqual({ pending: 1 });
  });
});

/** A flusher every 5 ms under a budget of 1 row a second, capped at a minute: a flush of R rows waits R seconds. */
function onePerSecond(coalescer: Coalescer, write: (batch: Batch) => Promise<void>) {
  return startFlusher({
    coalescer,
    write,
    intervalMs: 5,
    maxRowsPerS: 1,
    maxIntervalMs: 60_000,
    timeoutMs: 1000,
    log,
    onFailure: () => {},
  });
}

describe("flusher row budget", () => {
  const pacing = { intervalMs: 200, maxRowsPerS: 10_000, maxIntervalMs: 3000 };

  test("under the budget, the wait is the interval and the size trigger may end it", () => {
    expect(waitAfter(1000, pacing)).toEqual({ budgetMs: 100, wakeableMs: 100 });
    expect(waitAfter(0, pacing)).toEqual({ budgetMs: 0, wakeableMs: 200 });
  });

  test("past the budget, a flush of R rows is followed by R / budget seconds that nothing but stop() ends", () => {
    expect(waitAfter(15_000, pacing)).toEqual({ budgetMs: 1500, wakeableMs: 0 });
  });

  test("the budget's wait is capped at FLUSH_MAX_INTERVAL_MS, and never below the interval", () => {
    expect(waitAfter(1_000_000, pacing)).toEqual({ budgetMs: 3000, wakeableMs: 0 });
    expect(waitAfter(1_000_000, { ...pacing, intervalMs: 60_000 })).toEqual({ budgetMs: 60_000, wakeableMs: 0 });
  });

  test("without a budget (0), every interval, wakeable throughout", () => {
    expect(waitAfter(1_000_000, { ...pacing, maxRowsPerS: 0 })).toEqual({ budgetMs: 0, wakeableMs: 200 });
  });

  test("the size trigger does not end the budget's wait; stop() does, and drains what is pending", async () => {
    const coalescer = createCoalescer();
    coalescer.setBase(0, 0);
    coalescer.add(0, 0, [
      { product_id: id(1), count: 1 },
      { product_id: id(2), count: 1 },
    ]);
    const writes: Batch[] = [];
    // 2 rows at 1 row a second, capped at a minute: the first flush (after 5 ms) is followed by a 2 s budget wait.
    const flusher = onePerSecond(coalescer, async (batch) => void writes.push(batch));
    await until("the first flush", () => writes.length === 1);
    coalescer.add(0, 1, [{ product_id: id(3), count: 4 }]);
    flusher.wake();
    // Let the timers and microtasks of a few event-loop turns run: a woken flush would have started by then.
    for (let i = 0; i < 5; i++) await Bun.sleep(1);
    expect(writes.length).toBe(1);
    const stopped = await Promise.race([flusher.stop(2), Bun.sleep(10_000).then(() => "hung" as const)]);
    expect(stopped).toEqual({ pending: 0 });
    expect(writes.length).toBe(2);
    expect(writes[1]!.views).toBe(4);
  });
});

describe("the consume loop's polls and the flushes", () => {
  test("polls end just before the flush is due, none waiting over POLL_MAX_MS", () => {
    // A poll holds what it fetched until its wait ends: one ending after the flush's take would make its views
    // wait a whole interval more.
    const due = 1200;
    const ends: number[] = [];
    let now = 1000;
    while (due - now > 15) {
      const w = pollWaitMs(due, now);
      expect(w).toBeGreaterThanOrEqual(1);
      expect(w).toBeLessThanOrEqual(POLL_MAX_MS);
      now += w;
      ends.push(now);
    }
    expect(ends).toEqual([1093, 1185]);
  });

  test("within the margin of the flush, or past its due time (a write under way), one full wait", () => {
    expect(pollWaitMs(1200, 1190)).toBe(POLL_MAX_MS);
    expect(pollWaitMs(1200, 1500)).toBe(POLL_MAX_MS);
  });

  test("dueAt() is when the next batch is taken: after the row budget's wait, not one interval", async () => {
    const coalescer = createCoalescer();
    coalescer.setBase(0, 0);
    coalescer.add(
      0,
      0,
      Array.from({ length: 20 }, (_, i) => ({ product_id: id(i + 1), count: 1 })),
    );
    let written = 0;
    // 20 products and their 20 history rows at 1 row a second: the first flush (after 5 ms) is followed by a 40 s
    // wait, which stop() ends.
    const flusher = onePerSecond(coalescer, async () => void written++);
    try {
      await until("the first flush", () => written === 1);
      await until("the next due time", () => flusher.dueAt() - performance.now() > 10_000);
      expect(flusher.dueAt() - performance.now()).toBeGreaterThan(20_000); // the history rows count too
      expect(flusher.dueAt() - performance.now()).toBeLessThanOrEqual(40_000);
    } finally {
      await flusher.stop(1);
    }
  });
});
