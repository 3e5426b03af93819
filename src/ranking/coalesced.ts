import type { Logger } from "../log.ts";

/**
 * Reads that coalesce: one in flight, and one queued that takes every request made meanwhile (`merge`). A failed
 * read is logged once per outage (and once when reads work again); the next request reads again.
 */
export function coalescedReads<T>(
  read: (request: T) => Promise<void>,
  merge: (a: T, b: T) => T,
  log: Logger,
  what: Record<string, unknown>,
) {
  let running: Promise<void> | null = null;
  let queued: T | null = null;
  let failing = false;
  async function drain(first: T) {
    let next: T | null = first;
    while (next !== null) {
      try {
        await read(next);
        if (failing) log.info(what, "ranking refresh recovered");
        failing = false;
      } catch (err) {
        if (!failing) log.warn({ err, ...what }, "ranking refresh failed");
        failing = true;
      }
      next = queued;
      queued = null;
    }
  }
  return {
    request(r: T) {
      if (running) {
        queued = queued === null ? r : merge(queued, r);
        return;
      }
      running = drain(r).finally(() => (running = null));
    },
    busy: () => running !== null,
    /** Resolves when no read is in flight. */
    idle: () => running ?? Promise.resolve(),
  };
}
