import { NO_MINUTE } from "../db/flush.ts";
import { NO_OFFSET } from "../db/offsets.ts";
import { type KeyedViews, type ViewEvent, viewCount } from "../domain/view.ts";

// Pure in-memory state of the worker: per partition, the views counted since the last flush and the
// offsets they cover. No I/O here; the consumer feeds it and the writer persists what take() returns.
//
// `base` is the partition's next_offset as stored in Postgres (-1: nothing stored yet). Messages below it
// were already counted by an earlier flush (ours or another worker's) and are skipped: that is what makes a
// replay after a crash or rebalance harmless. A partition is unknown until setBase() is called for it.

const MINUTE_MS = 60_000;

export interface PartitionSlice {
  partition: number;
  /** next_offset stored in Postgres when this slice started: the writer's fence. */
  base: number;
  /** next_offset to store once the slice is applied (highest offset taken + 1). */
  next: number;
  /** Product id -> views. A product may appear in several slices (a request travels whole on one partition); the writer sums them. */
  counts: Map<string, number>;
  /** The same unkeyed views by the minute the API accepted them (epoch minutes, or NO_MINUTE): the history's rows. */
  minutes: Map<number, Map<string, number>>;
  /** Requests sent with an Idempotency-Key, in offset order: counted by the writer only if their key is new. */
  keyed: KeyedViews[];
  /**
   * (product, viewer) pairs of public views, keyed requests' included: folded into the products' unique-viewer
   * sketches, where a pair met twice changes nothing, so they need no key check.
   */
  viewerIds: string[];
  viewers: string[];
  views: number;
}

/**
 * Rows a batch writes: its products (and keyed items and viewer pairs) plus one history row per product and minute.
 * What the row budget (worker/flusher.ts) paces by.
 */
export function rowsOf(batch: Batch): number {
  let history = 0;
  for (const s of batch.slices) for (const m of s.minutes.values()) history += m.size;
  return batch.products + history;
}

export type AddResult = "counted" | "duplicate" | "gap" | "malformed" | "unknown_partition";

export interface Batch {
  slices: PartitionSlice[];
  products: number;
  views: number;
}

export interface Coalescer {
  hasBase(partition: number): boolean;
  setBase(partition: number, nextOffset: number): void;
  /**
   * Whether the message's views can be held exactly: no product's pending sum, nor the partition's, would pass
   * Number.MAX_SAFE_INTEGER. One that cannot is not added (the consumer dead-letters it, then skips it).
   */
  fits(partition: number, events: readonly ViewEvent[], keyed?: readonly KeyedViews[]): boolean;
  /**
   * `events` null means the message was malformed: it is skipped, but its offset still moves on. `at`: when the
   * API accepted the unkeyed events (epoch ms; null: unknown).
   */
  add(partition: number, offset: number, events: readonly ViewEvent[] | null, keyed?: readonly KeyedViews[], at?: number | null): AddResult;
  /** Forgets a partition entirely (revoked, or fenced by another worker); its pending views are dropped. */
  drop(partition: number): void;
  /** Forgets every partition (the consumer was replaced). */
  dropAll(): void;
  /** Distinct products pending across partitions, plus the items of keyed requests and the viewer pairs (rows to write). */
  size(): number;
  /** Hands over everything pending and starts new slices whose base is the handed-over `next`. */
  take(): Batch | null;
  /** The next offset this partition needs (undefined: no base loaded). */
  expected(partition: number): number | undefined;
}

interface State {
  base: number;
  next: number;
  counts: Map<string, number>;
  minutes: Map<number, Map<string, number>>;
  keyed: KeyedViews[];
  viewerIds: string[];
  viewers: string[];
  views: number;
}

const fresh = (offset: number): State => ({
  base: offset,
  next: offset,
  counts: new Map(),
  minutes: new Map(),
  keyed: [],
  viewerIds: [],
  viewers: [],
  views: 0,
});
const keyedItems = (keyed: readonly KeyedViews[]) => keyed.reduce((n, k) => n + k.views.length, 0);
/** What a partition's state holds toward size(): distinct products, keyed items and viewer pairs. */
const held = (s: State) => s.counts.size + keyedItems(s.keyed) + s.viewers.length;

function addViewers(s: State, events: readonly ViewEvent[]): number {
  let n = 0;
  for (const e of events) {
    if (!e.viewers) continue;
    for (const v of e.viewers) {
      s.viewerIds.push(e.product_id);
      s.viewers.push(v);
    }
    n += e.viewers.length;
  }
  return n;
}

/** Whether these views can be added with every sum still an exact integer (at most 2^53 - 1). */
function fitsExactly(s: State | undefined, events: readonly ViewEvent[], keyed: readonly KeyedViews[]): boolean {
  const pending = s?.views ?? 0;
  let added = 0;
  for (const e of events) {
    added += e.count;
    if ((s?.counts.get(e.product_id) ?? 0) + e.count > Number.MAX_SAFE_INTEGER) return false;
  }
  for (const k of keyed) added += viewCount(k.views);
  return pending + added <= Number.MAX_SAFE_INTEGER;
}

/** Adds a message's plain views to the partition's counts and to their minute; returns how many products are new. */
function addCounts(s: State, events: readonly ViewEvent[], minute: number): number {
  let added = 0;
  let inMinute = s.minutes.get(minute);
  if (!inMinute) {
    inMinute = new Map();
    if (events.length > 0) s.minutes.set(minute, inMinute);
  }
  for (const e of events) {
    const before = s.counts.get(e.product_id);
    if (before === undefined) added++;
    s.counts.set(e.product_id, (before ?? 0) + e.count);
    inMinute.set(e.product_id, (inMinute.get(e.product_id) ?? 0) + e.count);
    s.views += e.count;
  }
  return added;
}

export function createCoalescer(): Coalescer {
  const states = new Map<number, State>();
  let products = 0;

  return {
    hasBase: (p) => states.has(p),
    setBase(p, nextOffset) {
      const s = states.get(p);
      if (s) products -= held(s);
      states.set(p, fresh(nextOffset));
    },
    fits: (p, events, keyed = []) => fitsExactly(states.get(p), events, keyed),
    add(p, offset, events, keyed = [], at = null) {
      const s = states.get(p);
      if (!s) return "unknown_partition";
      // Offsets of this topic are contiguous (plain idempotent producer, no compaction). Below `next`: a replay
      // of what is stored or pending. Above it: a message from a fetch position older than the last rebalance
      // or seek, arriving late; counting it would skip the ones in between, so it waits for its turn.
      if (s.next !== NO_OFFSET) {
        if (offset < s.next) return "duplicate";
        if (offset > s.next) return "gap";
      }
      s.next = offset + 1;
      if (!events) return "malformed";
      products += addCounts(s, events, at === null ? NO_MINUTE : Math.floor(at / MINUTE_MS));
      products += addViewers(s, events);
      for (const k of keyed) {
        s.keyed.push(k);
        products += k.views.length + addViewers(s, k.views);
        s.views += viewCount(k.views);
      }
      return "counted";
    },
    drop(p) {
      const s = states.get(p);
      if (!s) return;
      products -= held(s);
      states.delete(p);
    },
    dropAll() {
      states.clear();
      products = 0;
    },
    size: () => products,
    take() {
      const slices: PartitionSlice[] = [];
      let views = 0;
      for (const [partition, s] of states) {
        if (s.next === s.base) continue; // nothing new since the last flush
        const { base, next, counts, minutes, keyed, viewerIds, viewers, views: n } = s;
        slices.push({ partition, base, next, counts, minutes, keyed, viewerIds, viewers, views: n });
        views += s.views;
        states.set(partition, fresh(s.next));
      }
      if (slices.length === 0) return null;
      const taken = products;
      products = 0;
      return { slices, products: taken, views };
    },
    expected(p) {
      const s = states.get(p);
      return s === undefined ? undefined : s.next;
    },
  };
}
