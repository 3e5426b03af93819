import { limitedLog, type Logger } from "../log.ts";
import type { Batch } from "./coalescer.ts";
import type { ConsumerMetrics } from "./consumer-metrics.ts";
import type { FlushResult } from "./writer.ts";

// What the consume loop does with a flush's result: metrics, rate-limited log lines, and the partitions to give up
// (fenced: another worker moved their offsets) or to commit to Kafka. Log lines at most every LOG_MS each: an
// outage or a client bug repeats them every flush.

const LOG_MS = 10_000;

export interface FlushReportDeps {
  m: ConsumerMetrics;
  log: Logger;
  /** A few of `ids` that match no product. */
  sampleUnknown(ids: readonly string[]): Promise<string[]>;
  /** A fenced partition: drop what is held for it, and seek back to `stored` if this worker still owns it. */
  fenced(partition: number, stored: number): void;
  /** An applied slice: its offset may be committed to Kafka. */
  flushed(partition: number, next: number): void;
}

export function createFlushReport(deps: FlushReportDeps) {
  const { m, log } = deps;
  const mismatchLog = limitedLog(log, LOG_MS);
  let lastUnknownLog = -Infinity;

  async function reportUnknown(batch: Batch, n: number) {
    m.unknown.inc(undefined, n);
    const now = performance.now();
    if (now - lastUnknownLog < LOG_MS) return;
    lastUnknownLog = now;
    const ids = batch.slices.flatMap((s) => [...s.counts.keys()]);
    const sample = await deps.sampleUnknown(ids).catch(() => []);
    log.warn({ unknown: n, sample }, "views for unknown products were not counted");
  }

  return function report(batch: Batch, res: FlushResult, seconds: number) {
    m.flushSeconds.observe(seconds);
    m.flushes.inc();
    m.flushProducts.observe(batch.products);
    m.views.inc(undefined, res.views);
    m.rows.inc(undefined, res.rowsUpdated);
    m.historyRows.inc(undefined, res.historyRows);
    if (res.repeats > res.mismatched) m.repeats.inc({ body: "same" }, res.repeats - res.mismatched);
    if (res.mismatched > 0) {
      m.repeats.inc({ body: "different" }, res.mismatched);
      // A client bug (one key for two requests) that this API process could not see: the first body won.
      mismatchLog(
        "warn",
        { mismatched: res.mismatched },
        "an Idempotency-Key came back with another body; only its first request was counted",
      );
    }
    if (res.unknownProducts > 0) void reportUnknown(batch, res.unknownProducts);
    for (const f of res.fenced) {
      m.fenced.inc();
      log.warn(f, "partition fenced: its stored offset moved under us; dropped our slice and refetch from the stored offset");
      deps.fenced(f.partition, f.stored);
    }
    const fenced = new Set(res.fenced.map((f) => f.partition));
    for (const s of batch.slices) if (!fenced.has(s.partition)) deps.flushed(s.partition, s.next);
  };
}
