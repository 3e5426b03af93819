import { guard, type Database } from "./client.ts";
import { topProducts } from "./products.ts";
import { MAX_TOP_LIMIT, type Product } from "../domain/product.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";

/** The worker NOTIFYs this channel in each flush transaction, so the signal arrives exactly at commit. */
export const FLUSH_CHANNEL = "product_views_flushed";

// GET /top costs no query: it reads an in-memory top-100, refreshed when a flush commits (NOTIFY) and at least
// every refreshMs as a fallback. Staleness bound: flush interval + one refresh query. If refreshing has failed
// for longer than maxStaleMs (Postgres away), reads get 503 rather than silently old data.

export interface TopCache {
  /** The top `limit` products as JSON text, serialised once per refresh and limit: no per-request work. */
  topJson(limit: number): string;
  /** Schedules a refresh (coalesced: at most one query in flight, one queued). */
  invalidate(): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createTopCache(database: Database, log: Logger, refreshMs: number): TopCache {
  let rows: Product[] = [];
  let json = new Map<number, string>();
  let freshAt = 0;
  let running: Promise<void> | null = null;
  let dirty = false;
  let timer: ReturnType<typeof setInterval> | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  let failing = false;
  const maxStaleMs = Math.max(3 * refreshMs, 3000);

  async function refreshLoop() {
    do {
      dirty = false;
      const started = performance.now();
      try {
        // Bounded: one hung query must not hold back every later refresh (they queue behind `running`).
        rows = await guard(topProducts(database.db, MAX_TOP_LIMIT), 5000);
        json = new Map();
        freshAt = started;
        if (failing) log.info("top-N refresh recovered");
        failing = false;
      } catch (err) {
        if (!failing) log.warn({ err }, "top-N refresh failed");
        failing = true;
        return;
      }
    } while (dirty);
  }

  function invalidate() {
    if (running) {
      dirty = true;
      return;
    }
    running = refreshLoop().finally(() => (running = null));
  }

  function top(limit: number): Product[] {
    if (performance.now() - freshAt > maxStaleMs) {
      throw new AppError("database_unavailable", "the top list is temporarily unavailable; retry later", { retryable: true });
    }
    return rows.length <= limit ? rows : rows.slice(0, limit);
  }

  return {
    topJson(limit) {
      const list = top(limit);
      let text = json.get(limit);
      if (text === undefined) {
        text = JSON.stringify(list);
        json.set(limit, text);
      }
      return text;
    },
    invalidate,
    async start() {
      invalidate();
      await running;
      timer = setInterval(invalidate, refreshMs);
      try {
        const sub = await database.sql.listen(FLUSH_CHANNEL, () => invalidate(), () => invalidate());
        unlisten = sub.unlisten;
      } catch (err) {
        log.warn({ err }, "LISTEN failed; top-N falls back to periodic refresh");
      }
    },
    async stop() {
      clearInterval(timer);
      await unlisten?.().catch(() => {});
      await running;
    },
  };
}
