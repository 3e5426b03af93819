import { guard, type Database } from "../db/client.ts";
import { productsByIds, topProducts } from "../db/products.ts";
import { FLUSH_CHANNEL, FLUSH_CHANNEL_UV, parseFlush } from "../db/flush-channel.ts";
import { mergeNotice, needsFullRead, topOf } from "./top-merge.ts";
import type { Registry } from "../metrics.ts";
import { MAX_TOP_LIMIT, type Product, type Rank } from "../domain/product.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { coalescedReads } from "./coalesced.ts";
import { createPublished } from "./published.ts";

// GET /top costs no query: it reads an in-memory top-100. A flush's NOTIFY names the products it changed that
// can rank with their new counts (top-merge.ts): when all of them are listed already or cannot enter the list, it
// is merged in memory; otherwise the refresh re-reads only those and the current top-100 by primary key. Either
// way its cost does not grow with the table. The whole ranking is read (one scan and sort of products) at start, when
// LISTEN (re)connects (notifications may have been missed), while the top-100 is not full or ends in products
// with no views (an insert can enter it silently), and every fullRefreshMs as a safety net. The current
// top-100 is re-read at least every refreshMs, so if Postgres has been away for longer than maxStaleMs,
// reads get 503 rather than silently old data.

export interface TopCache {
  /** The top `limit` products as JSON text, serialised once per refresh and limit: no per-request work. */
  topJson(limit: number): string;
  /** Schedules a refresh that also re-reads these products (coalesced: one query in flight, one queued). */
  invalidate(ids?: readonly string[]): void;
  /** Calls `listener` after each refresh that changed the ranking or a count in it; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface TopOptions {
  refreshMs: number;
  fullRefreshMs: number;
  /** What it ranks by (top-merge.ts); each ranking is a cache of its own, on its own channel. */
  by?: Rank;
}

export function createTopCache(database: Database, log: Logger, opts: TopOptions, metrics?: Registry): TopCache {
  const by = opts.by ?? "view_count";
  // Registered by one cache per process (the API passes `metrics` to the view_count ranking's only).
  const reads = metrics && refreshHistogram(metrics);
  const list = createPublished<Product>((r) => `${r.id}:${r[by]}`);
  const st: TopState = { rows: [], freshAt: 0, changed: new Set(), full: true, lastFullAt: -Infinity };
  let timer: ReturnType<typeof setInterval> | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  const maxStaleMs = Math.max(3 * opts.refreshMs, 3000);

  async function readOnce() {
    const started = performance.now();
    const kind = await readTop(database, by, opts.fullRefreshMs, st);
    reads?.observe((performance.now() - started) / 1000, { kind });
    published();
  }

  /** After `rows` changed: the serialised lists are stale, and listeners hear of a changed ranking or count. */
  const published = () => list.set(st.rows);
  const refreshes = coalescedReads<true>(readOnce, () => true, log, { ranking: by });
  function invalidate(ids?: readonly string[]) {
    if (ids) for (const id of ids) st.changed.add(id);
    refreshes.request(true);
  }

  function onNotify(payload: string) {
    const notice = parseFlush(payload);
    if (notice === null) {
      st.full = true;
      invalidate();
      return;
    }
    const started = performance.now();
    // A read in flight may have started before this flush committed: it reads again (queued) instead of racing
    // this merge.
    const merged = refreshes.busy() ? null : mergeNotice(st.rows, notice, MAX_TOP_LIMIT, by);
    if (merged === null) {
      invalidate(notice.items.map((i) => i.id));
      return;
    }
    st.rows = merged;
    published();
    reads?.observe((performance.now() - started) / 1000, { kind: "notice" });
  }

  return {
    topJson(limit) {
      if (performance.now() - st.freshAt > maxStaleMs) {
        throw new AppError("database_unavailable", "the top list is temporarily unavailable; retry later", { retryable: true });
      }
      return list.json(limit);
    },
    invalidate,
    onChange: list.onChange,
    async start() {
      invalidate();
      await refreshes.idle();
      timer = setInterval(() => invalidate(), opts.refreshMs);
      try {
        const sub = await database.sql.listen(by === "view_count" ? FLUSH_CHANNEL : FLUSH_CHANNEL_UV, onNotify, () => {
          // (Re)connected: notifications sent while the connection was down are lost.
          st.full = true;
          invalidate();
        });
        unlisten = sub.unlisten;
        await refreshes.idle();
      } catch (err) {
        log.warn({ err }, "LISTEN failed; top-N falls back to periodic refresh");
      }
    },
    async stop() {
      clearInterval(timer);
      await unlisten?.().catch(() => {});
      await refreshes.idle();
    },
  };
}

/**
 * kind="full": the whole ranking (a scan of products); kind="partial": the current top and the named products;
 * kind="notice": a flush's NOTIFY merged in memory, no query.
 */
function refreshHistogram(metrics: Registry) {
  return metrics.histogram(
    "top_refresh_seconds",
    "Top-N refreshes by kind (full, partial: queries; notice: merged from a NOTIFY), and how long they took",
    [0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
  );
}

interface TopState {
  rows: Product[];
  /** When the last read that succeeded started. */
  freshAt: number;
  /** Products named by notifications since the last read, and whether the next one must read everything. */
  changed: Set<string>;
  full: boolean;
  lastFullAt: number;
}

/** One read: the whole ranking, or the current top and the named products. What fails is read by the next one. */
async function readTop(database: Database, by: Rank, fullRefreshMs: number, st: TopState): Promise<"full" | "partial"> {
  const started = performance.now();
  const wantFull = st.full || (by === "view_count" && needsFullRead(st.rows, MAX_TOP_LIMIT)) || started - st.lastFullAt > fullRefreshMs;
  const ids = wantFull ? [] : [...new Set([...st.rows.map((r) => r.id), ...st.changed])];
  const taken = st.changed;
  st.changed = new Set();
  st.full = false;
  try {
    // Bounded: one hung query must not hold back every later refresh (they queue behind the one in flight).
    if (wantFull) {
      st.rows = await guard(topProducts(database.db, MAX_TOP_LIMIT, by), 5000);
      st.lastFullAt = started;
    } else {
      st.rows = topOf(await guard(productsByIds(database.db, ids), 5000), MAX_TOP_LIMIT, by);
    }
  } catch (err) {
    for (const id of taken) st.changed.add(id);
    st.full ||= wantFull;
    throw err;
  }
  st.freshAt = started;
  return wantFull ? "full" : "partial";
}
