import type { Logger } from "../log.ts";
import { startEvery } from "./every.ts";
import type { Registry } from "../metrics.ts";

// Keeps view_keys to about one window's worth of keys. Expired rows already count as absent (a flush
// replaces them), so deleting them late is harmless and any number of workers may run this at once.

export interface KeyExpiry {
  stop(): Promise<void>;
}

export function startKeyExpiry(opts: {
  /** Deletes up to `limit` expired keys, returning how many (db/keys.ts expireKeys). */
  expire(limit: number): Promise<number>;
  intervalMs: number;
  log: Logger;
  metrics: Registry;
  /** Rows per DELETE: short statements, so a flush never waits long on them. */
  limit?: number;
}): KeyExpiry {
  const limit = opts.limit ?? 10_000;
  const expired = opts.metrics.counter("worker_idempotency_keys_expired_total", "Expired Idempotency-Key records deleted");
  let failing = false;

  async function sweep(stopped: () => boolean) {
    try {
      // Bounded: a large backlog is taken over several ticks rather than in one long loop.
      for (let i = 0; i < 20 && !stopped(); i++) {
        const n = await opts.expire(limit);
        expired.inc(undefined, n);
        if (n < limit) break;
      }
      if (failing) opts.log.info("expired Idempotency-Key records are deleted again");
      failing = false;
    } catch (err) {
      // An outage fails every tick: one line when it starts, one when it ends.
      if (!failing) opts.log.warn({ err }, "could not delete expired Idempotency-Key records; retrying every interval");
      failing = true;
    }
  }

  return startEvery(opts.intervalMs, sweep);
}
