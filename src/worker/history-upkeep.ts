import type { Logger } from "../log.ts";
import { startEvery } from "./every.ts";
import type { Registry } from "../metrics.ts";
import type { Folded } from "../db/history.ts";

// Keeps the views history in shape from the worker: folds closed minutes into hours every interval, and creates and
// drops partitions every PARTITIONS_MS. Any number of workers may run it: a minute row is folded under its lock
// (db/history.ts), and partition DDL is IF [NOT] EXISTS.

export interface HistoryUpkeep {
  stop(): Promise<void>;
}

const PARTITIONS_MS = 10 * 60_000;
/** Folds per tick at most: a backlog (a worker that was down) is taken over several ticks. */
const FOLDS_PER_TICK = 20;

export function startHistoryUpkeep(opts: {
  /** Folds up to `limit` minutes (db/history.ts foldMinutes). */
  fold(limit: number): Promise<Folded>;
  /** Creates and drops partitions (db/history-partitions.ts). */
  partitions(): Promise<{ created: string[]; dropped: string[] }>;
  intervalMs: number;
  log: Logger;
  metrics: Registry;
  limit?: number;
}): HistoryUpkeep {
  const limit = opts.limit ?? 60;
  const folded = opts.metrics.counter("worker_history_folded_views_total", "Views folded from minute rows into hour rows");
  const failing = { fold: false, partitions: false };
  let lastPartitions = performance.now();

  const guarded = async (what: keyof typeof failing, work: () => Promise<void>) => {
    try {
      await work();
      if (failing[what]) opts.log.info({ what }, "history upkeep works again");
      failing[what] = false;
    } catch (err) {
      // An outage fails every tick: one line when it starts, one when it ends.
      if (!failing[what]) opts.log.warn({ err, what }, "history upkeep failed; retrying every interval");
      failing[what] = true;
    }
  };

  async function tick(stopped: () => boolean) {
    await guarded("fold", async () => {
      for (let i = 0; i < FOLDS_PER_TICK && !stopped(); i++) {
        const r = await opts.fold(limit);
        folded.inc(undefined, r.views);
        if (r.minutes < limit) break;
      }
    });
    if (performance.now() - lastPartitions < PARTITIONS_MS && !failing.partitions) return;
    lastPartitions = performance.now();
    await guarded("partitions", async () => {
      const r = await opts.partitions();
      if (r.created.length + r.dropped.length > 0) opts.log.info(r, "history partitions changed");
    });
  }

  return startEvery(opts.intervalMs, tick);
}
