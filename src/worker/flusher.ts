import { orTimeout } from "../deadline.ts";
import { backoff } from "../backoff.ts";
import type { Logger } from "../log.ts";
import { type Batch, type Coalescer, rowsOf } from "./coalescer.ts";

// When to write: every `intervalMs`, sooner when woken (the pending map reached its size trigger), with
// backoff after a failure. Under a row budget (`maxRowsPerS`), a flush of R rows is followed by at least
// R / maxRowsPerS seconds without one, up to `maxIntervalMs`, and the size trigger does not cut that short: a
// longer window coalesces more (Zipf traffic: 10x the views in one window touch ~6x the products), so Postgres's
// write rate grows much slower than the view rate, and counts get at most `maxIntervalMs` old.
//
// A failed batch is kept and retried as it is (same offsets, same counts), so a retry after an unknown commit
// outcome is fenced by the stored offsets instead of counted twice. That is also why a write that does not settle
// within `timeoutMs` may be abandoned and sent again: whichever of the two reaches Postgres second finds the offsets
// moved. Without that bound one hung driver call would stop the worker applying anything, silently.

export type FlushOutcome = "ok" | "empty" | "failed";

export interface Flusher {
  wake(): void;
  /**
   * When the next batch is taken if nothing wakes the flusher sooner (performance.now() time); while a write is
   * under way, the earliest it can be (now + intervalMs). The consume loop ends its poll just before it.
   */
  dueAt(): number;
  /** Ends the loop, then drains: the kept batch and what is pending, with a bounded number of tries. */
  stop(tries?: number): Promise<{ pending: number }>;
}

export interface FlushPacing {
  intervalMs: number;
  /** Rows a second this worker aims to stay under; 0: no budget. */
  maxRowsPerS: number;
  /** The longest wait the budget may impose (never below intervalMs). */
  maxIntervalMs: number;
}

/**
 * The wait after a flush of `rows` rows: `budgetMs` that nothing but stop() cuts short, then `wakeableMs` that the
 * size trigger may end early. Together at least intervalMs, and at most max(intervalMs, maxIntervalMs).
 */
export function waitAfter(rows: number, p: FlushPacing): { budgetMs: number; wakeableMs: number } {
  const cap = Math.max(p.intervalMs, p.maxIntervalMs);
  const budgetMs = p.maxRowsPerS > 0 ? Math.min(cap, (rows * 1000) / p.maxRowsPerS) : 0;
  return { budgetMs, wakeableMs: Math.max(0, p.intervalMs - budgetMs) };
}

export function startFlusher(opts: {
  coalescer: Coalescer;
  /** Takes the next batch (default: coalescer.take()); lets the caller tag what it hands over. */
  take?: () => Batch | null;
  write(batch: Batch): Promise<void>;
  intervalMs: number;
  /** The row budget (see waitAfter); without it, every intervalMs. */
  maxRowsPerS?: number;
  maxIntervalMs?: number;
  /** A write that has not settled by then counts as failed (and is retried). */
  timeoutMs: number;
  log: Logger;
  onFailure(err: unknown, batch: Batch): void;
}): Flusher {
  let kept: Batch | null = null;
  let stopping = false;
  // Ends the current wait: stop() always, wake() only while the wait is wakeable.
  let endWait: (() => void) | null = null;
  let wakeable = false;
  // A wake() during the budget's wait is kept for the wakeable part after it: the consumer does not repeat it
  // while fetching is paused.
  let woken = false;
  const pacing: FlushPacing = { intervalMs: opts.intervalMs, maxRowsPerS: opts.maxRowsPerS ?? 0, maxIntervalMs: opts.maxIntervalMs ?? 0 };
  // Rows of the last flush written (the products of its batch): what the row budget paces by.
  let lastRows = 0;
  let due = performance.now() + opts.intervalMs;

  function wait(ms: number, canWake: boolean): Promise<void> {
    if (ms <= 0 || stopping || (canWake && woken)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        endWait = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      endWait = done;
      wakeable = canWake;
    });
  }

  async function flushOnce(): Promise<FlushOutcome> {
    kept ??= opts.take ? opts.take() : opts.coalescer.take();
    const batch = kept;
    if (!batch) return "empty";
    try {
      // Abandoned after the deadline: its late failure is nobody's to handle.
      await orTimeout(
        opts.write(batch),
        opts.timeoutMs,
        () => new Error(`flush did not settle within ${opts.timeoutMs} ms; retrying the same batch`),
      );
      kept = null;
      lastRows = rowsOf(batch);
      return "ok";
    } catch (err) {
      opts.onFailure(err, batch);
      return "failed";
    }
  }

  const loop = (async () => {
    let failures = 0;
    while (!stopping) {
      // The size trigger does not cut a backoff short: Postgres is away or failing, and more rows will not help.
      if (failures > 0) {
        const ms = backoff(failures);
        due = performance.now() + ms;
        await wait(ms, false);
      } else {
        const { budgetMs, wakeableMs } = waitAfter(lastRows, pacing);
        lastRows = 0;
        due = performance.now() + budgetMs + wakeableMs;
        await wait(budgetMs, false);
        await wait(wakeableMs, true);
      }
      woken = false;
      if (stopping) break;
      due = performance.now() + opts.intervalMs;
      failures = (await flushOnce()) === "failed" ? failures + 1 : 0;
    }
  })();

  return {
    dueAt: () => due,
    wake: () => {
      woken = true;
      if (wakeable) endWait?.();
    },
    async stop(tries = 10) {
      stopping = true;
      endWait?.();
      await loop;
      for (let i = 0; i < tries; i++) {
        const r = await flushOnce();
        if (r === "empty") break;
        if (r === "failed") await Bun.sleep(backoff(i));
      }
      return { pending: (kept?.products ?? 0) + opts.coalescer.size() };
    },
  };
}

/** The longest one poll of Kafka waits: librdkafka's batch read returns when it is full or when its wait ends. */
export const POLL_MAX_MS = 100;
// A poll returns a millisecond or two after its wait, and the flusher's timer may run before its messages are added:
// too small a margin misses the flush, too large one waits needlessly (bench/RESULTS.md measured the middle best).
const POLL_MARGIN_MS = 15;

/**
 * How long the consume loop's next poll may wait for messages, given when the flusher next takes its batch. A
 * poll holds what it fetched until it is full or its wait ends, so a view that reaches the worker just before a flush
 * would miss it and wait a whole interval more. So the waits are spread to end just before the flush is due. Not
 * shorter waits throughout: each poll costs the binding CPU whatever it returns. Within the margin, or past due (a
 * write under way), one full wait.
 */
export function pollWaitMs(dueAt: number, now: number): number {
  const left = dueAt - now - POLL_MARGIN_MS;
  if (left < 1) return POLL_MAX_MS;
  return Math.ceil(left / Math.ceil(left / POLL_MAX_MS));
}
