import type { Db } from "../db/client.ts";
import { type FlushRow, type FlushSettings, isNotAllMoved, runFlush } from "../db/flush.ts";
import { loadOffsets, NO_OFFSET } from "../db/offsets.ts";
import type { Batch } from "./coalescer.ts";
import { type FlushInput, flushInput, perPartitionItems } from "./flush-rows.ts";

// A batch from the coalescer, written by one statement (db/flush.ts): counts, offsets, keys, viewers and history
// commit together or not at all, and a batch applied once can never apply again (the offsets' compare-and-set).

export interface FlushOptions {
  /** Products whose views this flush leaves out (set aside: see worker/refused.ts); the offsets move all the same. */
  skip?: (productId: string) => boolean;
  /** Runs the statement to its end, then fails it on purpose so nothing stays: isDryRunEnd() tells that error. */
  dryRun?: boolean;
  /**
   * The oldest minute the history keeps (epoch ms, db/history-partitions.ts oldestMinute): views accepted before it
   * are counted, but not in the history. Default: the start of yesterday (UTC).
   */
  historyFrom?: number;
}

export interface FlushResult {
  /** Products whose count was raised. */
  rowsUpdated: number;
  /** Distinct ids in the batch that matched no product (deleted or never created). */
  unknownProducts: number;
  /** Partitions whose stored offset moved under us (another worker owns them now): their views were not applied. */
  fenced: Array<{ partition: number; stored: number }>;
  views: number;
  /** Keyed requests not counted because their Idempotency-Key was counted within the window. */
  repeats: number;
  /** Of those, how many came with another body than the counted one (the first body won). */
  mismatched: number;
  /** Views of applied partitions left out by `skip`. */
  skipped: number;
  /** (product, minute) rows of the history written. */
  historyRows: number;
}

/** How long a counted Idempotency-Key keeps its repeats from being counted. */
export interface KeyOptions {
  windowMs: number;
}

const DAY_MS = 86_400_000;

/**
 * Writes `batch`. Unkeyed views go summed per product when the batch spans partitions (fewer items), which counts only
 * if every partition's offset moves; when one did not (another worker owns it now) the statement undoes itself and
 * the batch goes again per partition, where each partition's views count only if its own offset moved.
 */
export async function flush(
  db: Db,
  topic: string,
  batch: Batch,
  topicId: string | null,
  keys: KeyOptions,
  opts: FlushOptions = {},
): Promise<FlushResult> {
  const historyFrom = opts.historyFrom ?? (Math.floor(Date.now() / DAY_MS) - 1) * DAY_MS;
  const settings: FlushSettings = { topic, topicId, keyWindowMs: keys.windowMs, historyFrom: new Date(historyFrom).toISOString() };
  const input = flushInput(batch, opts.skip, !opts.dryRun);
  if (opts.dryRun) {
    await runFlush(db, settings, input.rows, true);
    throw new Error("a dry run's statement did not fail"); // its last column's cast cannot succeed
  }
  let row: FlushRow | undefined;
  if ("summed" in input.rows.items) {
    try {
      row = await runFlush(db, settings, input.rows);
    } catch (err) {
      if (!isNotAllMoved(err)) throw err;
    }
  }
  if (!row) {
    const items = perPartitionItems(batch, (id) => !opts.skip?.(id));
    row = await runFlush(db, settings, { ...input.rows, items });
  }
  const result = tally(batch, input, row);
  const fencedParts = result.fenced.map((f) => f.partition);
  if (fencedParts.length > 0) {
    // Read after the statement: the offsets as the worker that moved them committed them.
    const now = await loadOffsets(db, topic, fencedParts);
    result.fenced = fencedParts.map((p) => ({ partition: p, stored: now.get(p)?.next ?? NO_OFFSET }));
  }
  return result;
}

/** What the statement did, per the slices it applied: views, repeats (stored keys and this batch's own), skips. */
function tally(batch: Batch, input: FlushInput, row: FlushRow): FlushResult {
  const applied = new Set((row.applied ?? []).map(Number));
  let views = 0;
  let skipped = 0;
  const fenced: FlushResult["fenced"] = [];
  for (const slice of batch.slices) {
    const left = input.skippedIn.get(slice.partition) ?? 0;
    if (applied.has(slice.partition)) {
      views += slice.views - left;
      skipped += left;
    } else fenced.push({ partition: slice.partition, stored: NO_OFFSET });
  }
  // Keyed requests of applied slices that were not counted: repeats of a key already stored, or met twice here.
  views -= Number(row.repeated_views);
  let repeats = Number(row.repeats);
  let mismatched = Number(row.mismatched);
  for (const r of input.localRepeats) {
    if (!applied.has(r.partition)) continue;
    views -= r.views;
    repeats++;
    if (r.mismatched) mismatched++;
  }
  const rowsUpdated = Number(row.rows);
  return {
    rowsUpdated,
    unknownProducts: Number(row.products) - rowsUpdated,
    fenced,
    views,
    repeats,
    mismatched,
    skipped,
    historyRows: Number(row.history_rows),
  };
}
