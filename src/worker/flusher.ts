import type { Logger } from "../log.ts";
import type { Batch, Coalescer } from "./coalescer.ts";

// When to write: every `intervalMs`, sooner when woken (the pending map reached its size trigger), with
// backoff after a failure. A failed batch is kept and retried as it is (same offsets, same counts), so a
// retry after an unknown commit outcome is fenced by the stored offsets instead of counted twice. That is also
// why a write that does not settle within `timeoutMs` may be abandoned and sent again: whichever of the two
// reaches Postgres second finds the offsets moved. Without that bound one hung driver call would stop the
// worker applying anything, silently.

export type FlushOutcome = "ok" | "empty" | "failed";

export interface Flusher {
  wake(): void;
  /** Ends the loop, then drains: the kept batch and what is pending, with a bounded number of tries. */
  stop(tries?: number): Promise<{ pending: number }>;
}

export function backoff(attempt: number): number {
  return Math.min(100 * 2 ** attempt, 5000);
}

export function startFlusher(opts: {
  coalescer: Coalescer;
  /** Takes the next batch (default: coalescer.take()); lets the caller tag what it hands over. */
  take?: () => Batch | null;
  write(batch: Batch): Promise<void>;
  intervalMs: number;
  /** A write that has not settled by then counts as failed (and is retried). */
  timeoutMs: number;
  log: Logger;
  onFailure(err: unknown, batch: Batch): void;
}): Flusher {
  let kept: Batch | null = null;
  let stopping = false;
  let wakeUp: (() => void) | null = null;

  async function flushOnce(): Promise<FlushOutcome> {
    kept ??= opts.take ? opts.take() : opts.coalescer.take();
    const batch = kept;
    if (!batch) return "empty";
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const write = opts.write(batch);
      write.catch(() => {}); // abandoned after the deadline: its late failure is nobody's to handle
      await Promise.race([
        write,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`flush did not settle within ${opts.timeoutMs} ms; retrying the same batch`)),
            opts.timeoutMs,
          );
        }),
      ]);
      kept = null;
      return "ok";
    } catch (err) {
      opts.onFailure(err, batch);
      return "failed";
    } finally {
      clearTimeout(timer);
    }
  }

  const loop = (async () => {
    let failures = 0;
    while (!stopping) {
      await new Promise<void>((r) => {
        wakeUp = r;
        setTimeout(r, failures > 0 ? backoff(failures) : opts.intervalMs);
      });
      wakeUp = null;
      if (stopping) break;
      failures = (await flushOnce()) === "failed" ? failures + 1 : 0;
    }
  })();

  return {
    wake: () => wakeUp?.(),
    async stop(tries = 10) {
      stopping = true;
      wakeUp?.();
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
