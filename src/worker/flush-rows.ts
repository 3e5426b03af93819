import type { FlushRows } from "../db/flush.ts";
import { NO_TIME } from "../db/flush.ts";
import { viewCount } from "../domain/view.ts";
import type { Batch } from "./coalescer.ts";

// A batch as the flush statement's arrays (db/flush.ts), and what the statement cannot see but the result needs:
// views left out by `skip`, and keyed requests met twice in the batch. Pure.

export interface FlushInput {
  rows: FlushRows;
  /** Views of each partition left out by `skip`. */
  skippedIn: Map<number, number>;
  /** Keyed requests whose key came earlier in this batch: not sent, counted as repeats where their partition moved. */
  localRepeats: Array<{ partition: number; views: number; mismatched: boolean }>;
}

/**
 * `summed`: unkeyed views summed per product over partitions (one item a product, not one per product and
 * partition: with windows on partitions in turn a hot product is in every slice); they may count only if every
 * offset moves, which the statement asserts. Null when that form does not apply (one slice, or a sum past 2^53).
 */
export function flushInput(batch: Batch, skip: ((id: string) => boolean) | undefined, summed: boolean): FlushInput {
  const skippedIn = new Map<number, number>();
  const skipping = (partition: number, id: string, n: number) => {
    if (!skip?.(id)) return false;
    skippedIn.set(partition, (skippedIn.get(partition) ?? 0) + n);
    return true;
  };
  const { keys, keyItems, localRepeats } = keyedRows(batch, skip, skipping);
  // Views left out of the unkeyed counts (the keyed ones were taken off above); no pass at all in a plain flush.
  if (skip) for (const slice of batch.slices) for (const [id, n] of slice.counts) skipping(slice.partition, id, n);
  const keep = (id: string) => !skip?.(id);
  const rows: FlushRows = {
    offsets: {
      parts: batch.slices.map((s) => s.partition),
      bases: batch.slices.map((s) => s.base),
      nexts: batch.slices.map((s) => s.next),
    },
    keys,
    keyItems,
    viewers: viewerRows(batch, keep),
    minutes: minuteRows(batch, keep),
    items: (summed && summedItems(batch, keep)) || perPartitionItems(batch, keep),
  };
  return { rows, skippedIn, localRepeats };
}

/**
 * Keyed requests: stored in view_keys by the same statement that counts them, so a key is on record exactly when its
 * views are. A key met twice in this batch (a retry that arrived before the first was flushed) is counted at its
 * first place only: one statement cannot insert a key twice.
 */
function keyedRows(
  batch: Batch,
  skip: ((id: string) => boolean) | undefined,
  skipping: (partition: number, id: string, n: number) => boolean,
) {
  const keys: FlushRows["keys"] = { parts: [], keys: [], fps: [], ats: [] };
  const keyItems: FlushRows["keyItems"] = { keys: [], ids: [], counts: [] };
  const seen = new Map<string, string>();
  const localRepeats: FlushInput["localRepeats"] = [];
  for (const slice of batch.slices) {
    for (const k of slice.keyed) {
      // A plain flush (no skip) sends the views as they are, without a copy.
      const views = skip ? k.views.filter((e) => !skipping(slice.partition, e.product_id, e.count)) : k.views;
      const fp = seen.get(k.key);
      if (fp !== undefined) {
        localRepeats.push({ partition: slice.partition, views: viewCount(views), mismatched: fp !== k.fp });
        continue;
      }
      seen.set(k.key, k.fp);
      keys.parts.push(slice.partition);
      keys.keys.push(k.key);
      keys.fps.push(k.fp);
      keys.ats.push(k.at ?? NO_TIME);
      for (const e of views) {
        keyItems.keys.push(k.key);
        keyItems.ids.push(e.product_id);
        keyItems.counts.push(e.count);
      }
    }
  }
  return { keys, keyItems, localRepeats };
}

function viewerRows(batch: Batch, keep: (id: string) => boolean): FlushRows["viewers"] {
  const out: FlushRows["viewers"] = { parts: [], ids: [], hashes: [] };
  for (const slice of batch.slices) {
    for (let i = 0; i < slice.viewers.length; i++) {
      if (!keep(slice.viewerIds[i]!)) continue;
      out.parts.push(slice.partition);
      out.ids.push(slice.viewerIds[i]!);
      out.hashes.push(slice.viewers[i]!);
    }
  }
  return out;
}

function minuteRows(batch: Batch, keep: (id: string) => boolean): FlushRows["minutes"] {
  const out: FlushRows["minutes"] = { parts: [], ids: [], minutes: [], counts: [] };
  for (const slice of batch.slices) {
    for (const [minute, byId] of slice.minutes) {
      for (const [id, n] of byId) {
        if (!keep(id)) continue;
        out.parts.push(slice.partition);
        out.ids.push(id);
        out.minutes.push(minute);
        out.counts.push(n);
      }
    }
  }
  return out;
}

/** Unkeyed views per partition: each counts only where its partition's offset moved. */
export function perPartitionItems(batch: Batch, keep: (id: string) => boolean): FlushRows["items"] {
  const out = { parts: [] as number[], ids: [] as string[], counts: [] as number[] };
  for (const slice of batch.slices) {
    for (const [id, n] of slice.counts) {
      if (!keep(id)) continue;
      out.parts.push(slice.partition);
      out.ids.push(id);
      out.counts.push(n);
    }
  }
  return out;
}

/** Each partition's sums are exact (coalescer.fits); across partitions only below 2^53, else Postgres adds them. */
function summedItems(batch: Batch, keep: (id: string) => boolean): FlushRows["items"] | null {
  if (batch.slices.length < 2) return null;
  const sums = new Map<string, number>();
  for (const slice of batch.slices) for (const [id, n] of slice.counts) if (keep(id)) sums.set(id, (sums.get(id) ?? 0) + n);
  for (const n of sums.values()) if (n > Number.MAX_SAFE_INTEGER) return null;
  return { summed: { ids: [...sums.keys()], counts: [...sums.values()] }, slices: batch.slices.length };
}
