import type { Database } from "../db/client.ts";
import { guard } from "../db/client.ts";
import { FLUSH_CHANNEL_1H, parseFlush } from "../db/flush-channel.ts";
import { windowViews } from "../db/history.ts";
import { productsByIds } from "../db/products.ts";
import { BUCKET_MS, type Window, WINDOW_BUCKET } from "../domain/history.ts";
import { MAX_TOP_LIMIT, type Product } from "../domain/product.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Histogram, Registry } from "../metrics.ts";

// GET /top?window=: the most viewed products of a sliding window, held in memory per API like the all-time top.
// A full ranking (db/history.ts windowViews: a sum over the window's rows) is read at start and each time the window
// slides past a bucket edge (the oldest bucket's views leave it); 24 h and 7 d also every refreshMs. The 1 h window
// the flushes: each names the products it added the most views to in the window (flush-channel.ts), and the API
// re-reads those and the listed ones (primary-key ranges, at most 200 products x 60 minutes), so a product rising
// fast is listed one flush after its views are counted. One that rises slowly, never among a flush's 100 largest
// additions, waits for the next full read (a minute at most).

/** The windows' read timings, one histogram for all of them (a registry holds each name once). */
export const windowReads = (metrics: Registry) =>
  metrics.histogram(
    "top_window_refresh_seconds",
    "Window rankings read, by window and kind (full: the whole window summed; candidates: a flush's named products and the listed ones)",
    [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
  );

export type WindowProduct = Product & { window: Window; window_views: number };

export interface WindowTop {
  topJson(limit: number): string;
  onChange(listener: () => void): () => void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createWindowTop(
  database: Database,
  log: Logger,
  window: Window,
  opts: { refreshMs: number; now?: () => number; reads?: Histogram; readTimeoutMs?: number },
): WindowTop {
  const now = opts.now ?? Date.now;
  const reads = opts.reads;
  const step = BUCKET_MS[WINDOW_BUCKET[window].bucket];
  let rows: WindowProduct[] = [];
  let json = new Map<number, string>();
  let freshAt = -Infinity;
  let signature = "";
  let failing = false;
  let running: Promise<void> | null = null;
  let again: Set<string> | "full" | null = null;
  let timers: Array<ReturnType<typeof setTimeout>> = [];
  let unlisten: (() => Promise<void>) | undefined;
  const listeners = new Set<() => void>();
  // Full reads come at least every min(refreshMs, step) (1 h: every step): three missed in a row and the list is not
  // served.
  const maxStaleMs = 3 * (window === "1h" ? step : Math.min(opts.refreshMs, step));

  async function read(named: Set<string> | "full") {
    const at = now();
    const started = performance.now();
    const counts =
      named === "full"
        ? await windowViews(database.db, window, at, { limit: MAX_TOP_LIMIT })
        : await windowViews(database.db, window, at, { ids: [...new Set([...rows.map((r) => r.id), ...named])] });
    const top = counts.slice(0, MAX_TOP_LIMIT);
    const products = new Map(
      (
        await productsByIds(
          database.db,
          top.map((c) => c.id),
        )
      ).map((p) => [p.id, p]),
    );
    rows = top.flatMap((c) => {
      const p = products.get(c.id);
      return p ? [{ ...p, window, window_views: c.views }] : [];
    });
    freshAt = at;
    reads?.observe((performance.now() - started) / 1000, { window, kind: named === "full" ? "full" : "candidates" });
    json = new Map();
    const sig = rows.map((r) => `${r.id}:${r.window_views}`).join(",");
    if (sig !== signature) {
      signature = sig;
      for (const l of listeners) l();
    }
  }

  /** Queues a read; reads coalesce (one in flight, one queued that takes every request meanwhile). */
  function refresh(named: Set<string> | "full") {
    if (running) {
      if (named === "full" || again === "full") again = "full";
      else again = new Set([...(again ?? []), ...named]);
      return;
    }
    running = (async () => {
      let next: Set<string> | "full" | null = named;
      while (next) {
        try {
          await guard(read(next), opts.readTimeoutMs ?? 5000);
          if (failing) log.info({ window }, "window ranking refresh recovered");
          failing = false;
        } catch (err) {
          if (!failing) log.warn({ err, window }, "window ranking refresh failed");
          failing = true;
        }
        next = again;
        again = null;
      }
    })().finally(() => (running = null));
  }

  /** A full read just after each bucket edge (the window slid), then every `step`. */
  function atEdges() {
    const first = step - (now() % step) + 50;
    const t = setTimeout(() => {
      refresh("full");
      const each = setInterval(() => refresh("full"), step);
      each.unref?.();
      timers.push(each);
    }, first);
    t.unref?.();
    timers.push(t);
  }

  return {
    topJson(limit) {
      if (now() - freshAt > maxStaleMs) {
        throw new AppError("database_unavailable", "the window's ranking is temporarily unavailable; retry later", { retryable: true });
      }
      let text = json.get(limit);
      if (text === undefined) {
        text = JSON.stringify(rows.length <= limit ? rows : rows.slice(0, limit));
        json.set(limit, text);
      }
      return text;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async start() {
      refresh("full");
      await running;
      atEdges();
      // The 1 h window follows the flushes between its edges; the others are summed again every refreshMs (a full
      // read costs a scan of the window's rows: bench/RESULTS.md).
      if (window !== "1h") {
        const every = setInterval(() => refresh("full"), opts.refreshMs);
        every.unref?.();
        timers.push(every);
        return;
      }
      try {
        const sub = await database.sql.listen(
          FLUSH_CHANNEL_1H,
          (payload) => {
            const notice = parseFlush(payload);
            refresh(notice === null ? "full" : new Set(notice.items.map((i) => i.id)));
          },
          () => refresh("full"), // (re)connected: notices may have been missed
        );
        unlisten = sub.unlisten;
      } catch (err) {
        log.warn({ err, window }, "LISTEN failed; the window ranking falls back to periodic refresh");
      }
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
      timers = [];
      await unlisten?.().catch(() => {});
      await running;
    },
  };
}
