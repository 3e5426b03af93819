import { hasPgError } from "../db/client.ts";
import { encodeViewEvents, type KeyedViews, MAX_MESSAGE_ITEMS, type ViewEvent, viewCount } from "../domain/view.ts";
import type { DeadLetter } from "../kafka/dead-letter.ts";
import { limitedLog, type Logger } from "../log.ts";
import type { Registry } from "../metrics.ts";
import type { Batch, PartitionSlice } from "./coalescer.ts";
import { isDataError, isDryRunEnd } from "../db/flush.ts";
import type { FlushOptions, FlushResult } from "./writer.ts";

// A flush Postgres refuses for its data (a count past bigint's maximum, a constraint) fails the same way on every
// retry, and one statement carries the whole batch: one bad product would stop every count. So the products it
// refuses are found by dry runs (each statement run to its end, then undone), their views are set aside on the
// dead-letter topic, and the batch is applied without them. The refusal is the product's, not the message's: a
// Kafka message merges many callers' requests, and the other products in it are counted.

/** Whether a dry run of the batch, limited to `only`, is refused for its data (the error), or passes (null). */
export type DryRun = (only: ReadonlySet<string>) => Promise<unknown>;

/** Every product a batch touches: unkeyed counts, keyed requests' items and viewer pairs. */
export function productsOf(batch: Batch): string[] {
  const ids = new Set<string>();
  for (const s of batch.slices) {
    for (const id of s.counts.keys()) ids.add(id);
    for (const k of s.keyed) for (const e of k.views) ids.add(e.product_id);
    for (const id of s.viewerIds) ids.add(id);
  }
  return [...ids];
}

/**
 * The products whose views Postgres refuses, by halving: about 2·k·log2(n) dry runs for k refused products in n.
 * A set refused as a whole whose halves each pass (a refusal of the combination) is refused whole. Null when
 * the batch is refused without any of its products (leaving products out cannot help); empty when a dry run of
 * the whole batch passes (the refusal did not come back: the batch is retried as it is).
 */
export async function findRefused(products: readonly string[], dryRun: DryRun): Promise<Set<string> | null> {
  if ((await dryRun(new Set())) !== null) return null;
  const refused = new Set<string>();
  const search = async (ids: readonly string[], knownRefused: boolean): Promise<void> => {
    if (!knownRefused && (await dryRun(new Set(ids))) === null) return;
    if (ids.length === 1) {
      refused.add(ids[0]!);
      return;
    }
    const half = ids.length >> 1;
    const [left, right] = [ids.slice(0, half), ids.slice(half)];
    const leftRefused = (await dryRun(new Set(left))) !== null;
    if (leftRefused) await search(left, true);
    const before = refused.size;
    await search(right, false);
    if (!leftRefused && refused.size === before) for (const id of ids) refused.add(id);
  };
  await search(products, false);
  return refused;
}

/** A letter's payload stays near this size: well inside Kafka's 1 MB default for a message. */
const LETTER_BYTES = 256 * 1024;
/** Bytes an event takes in JSON, about: its id and count, and 21 a viewer. */
const eventBytes = (e: ViewEvent) => 80 + 21 * (e.viewers?.length ?? 0);
/** The views topic's decoder takes at most this many events in a message, and viewers in an event. */
const VIEWERS_PER_EVENT = MAX_MESSAGE_ITEMS;

/**
 * The set-aside views as dead letters, one or more per partition: messages of the views topic's own form (so an
 * operator can replay them once the cause is fixed), keyed requests with their keys; from the slice's offsets
 * (its first: the stored offset it started from, 0 where none was stored; its last: the highest it took).
 */
export function setAsideLetters(batch: Batch, refused: ReadonlySet<string>, reason: string): Array<DeadLetter & { views: number }> {
  const letters: Array<DeadLetter & { views: number }> = [];
  for (const slice of batch.slices) {
    const { events, keyed } = refusedIn(slice, refused);
    const place = { partition: slice.partition, offset: Math.max(slice.base, 0), lastOffset: slice.next - 1, reason };
    for (const chunk of bySize(events.flatMap(splitViewers), eventBytes)) {
      letters.push({ ...place, payload: encodeViewEvents(chunk), views: viewCount(chunk) });
    }
    const keyedBytes = (k: KeyedViews) => 120 + k.views.reduce((n, e) => n + eventBytes(e), 0);
    for (const chunk of bySize(keyed, keyedBytes)) {
      letters.push({ ...place, payload: encodeViewEvents([], chunk), views: chunk.reduce((n, k) => n + viewCount(k.views), 0) });
    }
  }
  return letters;
}

/** An event with more viewers than a letter holds, as several of the same product (each a view a viewer). */
function splitViewers(e: ViewEvent): ViewEvent[] {
  if (!e.viewers || e.viewers.length <= VIEWERS_PER_EVENT) return [e];
  const out: ViewEvent[] = [];
  for (let i = 0; i < e.viewers.length; i += VIEWERS_PER_EVENT) {
    const viewers = e.viewers.slice(i, i + VIEWERS_PER_EVENT);
    const last = i + VIEWERS_PER_EVENT >= e.viewers.length;
    out.push({ product_id: e.product_id, count: last ? e.count - i : viewers.length, viewers });
  }
  return out;
}

function bySize<T>(items: readonly T[], bytes: (item: T) => number): T[][] {
  const chunks: T[][] = [];
  let size = Number.POSITIVE_INFINITY;
  for (const item of items) {
    if (size + bytes(item) > LETTER_BYTES || chunks.at(-1)!.length === MAX_MESSAGE_ITEMS) {
      chunks.push([]);
      size = 0;
    }
    chunks.at(-1)!.push(item);
    size += bytes(item);
  }
  return chunks;
}

function refusedIn(slice: PartitionSlice, refused: ReadonlySet<string>): { events: ViewEvent[]; keyed: KeyedViews[] } {
  const viewers = new Map<string, string[]>();
  slice.viewerIds.forEach((id, i) => {
    if (!refused.has(id)) return;
    const list = viewers.get(id) ?? [];
    list.push(slice.viewers[i]!);
    viewers.set(id, list);
  });
  const events: ViewEvent[] = [];
  for (const [id, count] of slice.counts) {
    if (!refused.has(id)) continue;
    const v = viewers.get(id);
    events.push(v ? { product_id: id, count, viewers: v } : { product_id: id, count });
  }
  const keyed: KeyedViews[] = [];
  for (const k of slice.keyed) {
    const views = k.views.filter((e) => refused.has(e.product_id));
    if (views.length > 0) keyed.push({ ...k, views });
  }
  return { events, keyed };
}

export interface SetAside {
  /** Flushes the batch; where Postgres refuses products for their data, sets them aside and applies the rest. */
  flush(batch: Batch, topicId: string | null): Promise<FlushResult>;
}

/** The code and message of the Postgres error in `err`, for a letter's reason. */
function pgReason(err: unknown): string {
  let found = "";
  hasPgError(err, (code, message) => {
    found = `${code} ${message}`;
    return true;
  });
  return `refused by Postgres: ${found || String(err)}`;
}

export function createSetAside(deps: {
  flush(batch: Batch, topicId: string | null, opts: FlushOptions): Promise<FlushResult>;
  deadLetter(letter: DeadLetter): Promise<void>;
  log: Logger;
  metrics: Registry;
}): SetAside {
  const views = deps.metrics.counter(
    "worker_views_set_aside_total",
    "Views Postgres refused to add (data errors), copied to <topic>.dlq and not counted (letter: written, or failed)",
  );
  const log = limitedLog(deps.log, 10_000);
  // A batch's refused products, kept while the flusher retries it: found and written once.
  const known = new WeakMap<Batch, ReadonlySet<string>>();
  const dryRun = (batch: Batch, topicId: string | null) => async (only: ReadonlySet<string>) => {
    try {
      await deps.flush(batch, topicId, { skip: (id) => !only.has(id), dryRun: true });
    } catch (err) {
      if (isDryRunEnd(err)) return null;
      if (isDataError(err)) return err;
      throw err;
    }
    return null;
  };

  async function setAside(batch: Batch, refused: ReadonlySet<string>, reason: string) {
    let written = 0;
    let failed = 0;
    for (const { views: n, ...letter } of setAsideLetters(batch, refused, reason)) {
      try {
        await deps.deadLetter(letter);
        written += n;
      } catch (err) {
        // Like a message that cannot be read: logged with its place, and counting goes on.
        failed += n;
        log("error", { err, partition: letter.partition, offset: letter.offset }, "could not dead-letter set-aside views");
      }
    }
    if (written > 0) views.inc({ letter: "written" }, written);
    if (failed > 0) views.inc({ letter: "failed" }, failed);
    log(
      "warn",
      { reason, products: [...refused].slice(0, 5), refused: refused.size, views: written + failed },
      "views set aside: Postgres refuses them",
    );
  }

  return {
    async flush(batch, topicId) {
      const skip = known.get(batch);
      if (skip) return deps.flush(batch, topicId, { skip: (id) => skip.has(id) });
      try {
        return await deps.flush(batch, topicId, {});
      } catch (err) {
        if (!isDataError(err)) throw err;
        const refused = await findRefused(productsOf(batch), dryRun(batch, topicId));
        // Not any product's, or not again: retried as any failure, and visible in the flush failures.
        if (!refused || refused.size === 0) throw err;
        await setAside(batch, refused, pgReason(err));
        known.set(batch, refused);
        return deps.flush(batch, topicId, { skip: (id) => refused.has(id) });
      }
    },
  };
}
