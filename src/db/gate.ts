import { AppError } from "../errors.ts";

// Bounds what one kind of read may hold of the connection pool. Reads a stranger can trigger at will (a product by
// any id, readiness) share the pool with the view routes' catalog lookups; without a bound, a flood of them queues
// thousands of queries in the driver, and a view whose first lookup waits behind them answers 503. Past `maxQueued`
// waiting, a read is refused at once (503, retryable) instead of queued.

export type Gate = <T>(work: () => Promise<T>) => Promise<T>;

export function createGate(maxInFlight: number, maxQueued: number): Gate {
  let inFlight = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    inFlight--;
    waiting.shift()?.();
  };
  return async (work) => {
    if (inFlight >= maxInFlight) {
      if (waiting.length >= maxQueued) {
        throw new AppError("database_unavailable", "too many reads in flight; retry later", { retryable: true });
      }
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
    inFlight++;
    try {
      return await work();
    } finally {
      release();
    }
  };
}

/**
 * One shared answer for a check anyone may ask for (readiness): concurrent callers share one run, and its answer
 * serves every call for `everyMs` after it settled.
 */
export function sharedCheck<T>(check: () => Promise<T>, everyMs: number): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | null = null;
  return () => {
    const now = performance.now();
    if (last === null || now - last.at > everyMs) {
      const value = check();
      last = { at: Number.POSITIVE_INFINITY, value };
      // Fresh from when it settled; until then every caller shares the one in flight.
      void value.finally(() => {
        if (last?.value === value) last.at = performance.now();
      });
    }
    return last.value;
  };
}
