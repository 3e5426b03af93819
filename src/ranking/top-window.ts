import type { Database } from "../db/client.ts";
import { guard } from "../db/client.ts";
import { FLUSH_CHANNEL_1H, parseFlush } from "../db/flush-channel.ts";
import { windowViews } from "../db/history.ts";
import { productsByIds } from "../db/products.ts";
import { BUCKET_MS, type Window, WINDOW_BUCKET } from "../domain/history.ts";
import { MAX_TOP_LIMIT, type Product } from "../domain/product.ts";
import { withDeadline } from "../deadline.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Histogram, Registry } from "../metrics.ts";
import { coalescedReads } from "./coalesced.ts";
import { createPublished } from "./published.ts";

// GET /top?window=: the most viewed products of a sliding window, held in memory per API like the all-time top.
// A full ranking (db/history.ts windowViews: a sum over the window's rows) is read at start and every refreshMs; 24 h
// and 7 d also at each hour, when their oldest bucket leaves. The 1 h window follows the flushes: each names the
// products it added the most views to in the window (flush-channel.ts), and the API re-reads those and the listed ones
// (primary-key ranges, at most 200 products x 60 minutes), so a product rising fast is listed one flush after its views
// are counted; at each minute the listed ones are re-read as the window slides. One that rises slowly, never among a
// flush's 100 largest additions, waits for the next full read (refreshMs).

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

type Request = Set<string> | "full";
const merge = (a: Request, b: Request): Request => (a === "full" || b === "full" ? "full" : new Set([...a, ...b]));

/** The window's top products at `at`: all of it summed ("full"), or only the listed and the named ones re-read. */
async function readWindow(
  database: Database,
  window: Window,
  at: number,
  listed: readonly string[],
  named: Request,
): Promise<WindowProduct[]> {
  const counts =
    named === "full"
      ? await windowViews(database.db, window, at, { limit: MAX_TOP_LIMIT })
      : await windowViews(database.db, window, at, { ids: [...new Set([...listed, ...named])] });
  const top = counts.slice(0, MAX_TOP_LIMIT);
  const products = new Map(
    (
      await productsByIds(
        database.db,
        top.map((c) => c.id),
      )
    ).map((p) => [p.id, p]),
  );
  return top.flatMap((c) => {
    const p = products.get(c.id);
    return p ? [{ ...p, window, window_views: c.views }] : [];
  });
}

/** Calls `fn` just after each bucket edge (the window slid), then every `step`; the timers go into `timers`. */
function atEdges(step: number, now: number, fn: () => void, timers: Array<ReturnType<typeof setTimeout>>) {
  const t = setTimeout(
    () => {
      fn();
      const each = setInterval(fn, step);
      each.unref?.();
      timers.push(each);
    },
    step - (now % step) + 50,
  );
  t.unref?.();
  timers.push(t);
}

export function createWindowTop(
  database: Database,
  log: Logger,
  window: Window,
  opts: { refreshMs: number; now?: () => number; reads?: Histogram; readTimeoutMs?: number },
): WindowTop {
  const now = opts.now ?? Date.now;
  const step = BUCKET_MS[WINDOW_BUCKET[window].bucket];
  const list = createPublished<WindowProduct>((r) => `${r.id}:${r.window_views}`);
  let freshAt = -Infinity;
  const timers: Array<ReturnType<typeof setTimeout>> = [];
  let unlisten: (() => Promise<void>) | undefined;
  // A read comes at least every min(refreshMs, step): three missed in a row and the list is not served.
  const maxStaleMs = 3 * Math.min(opts.refreshMs, step);
  const reads = coalescedReads<Request>(
    async (named) => {
      const at = now();
      const started = performance.now();
      const listed = list.rows().map((r) => r.id);
      list.set(await guard(readWindow(database, window, at, listed, named), opts.readTimeoutMs ?? 5000));
      freshAt = at;
      opts.reads?.observe((performance.now() - started) / 1000, { window, kind: named === "full" ? "full" : "candidates" });
    },
    merge,
    log,
    { window },
  );
  const full = () => reads.request("full");

  async function follow1h() {
    try {
      const sub = await database.sql.listen(
        FLUSH_CHANNEL_1H,
        (payload) => {
          const notice = parseFlush(payload);
          reads.request(notice === null ? "full" : new Set(notice.items.map((i) => i.id)));
        },
        full, // (re)connected: notices may have been missed
      );
      unlisten = sub.unlisten;
    } catch (err) {
      log.warn({ err, window }, "LISTEN failed; the window ranking falls back to periodic refresh");
    }
  }

  return {
    topJson(limit) {
      if (now() - freshAt > maxStaleMs) {
        throw new AppError("database_unavailable", "the window's ranking is temporarily unavailable; retry later", { retryable: true });
      }
      return list.json(limit);
    },
    onChange: list.onChange,
    async start() {
      full();
      await reads.idle();
      // A full read sums every row of the window (bench/RESULTS.md: ~2 s at a million products): every refreshMs.
      // 24 h and 7 d also at each hour, when their oldest bucket leaves; 1 h, whose buckets leave every minute,
      // re-reads only its listed products then (their counts stay exact as it slides), and the products each flush
      // names in between.
      const every = setInterval(full, opts.refreshMs);
      every.unref?.();
      timers.push(every);
      if (window !== "1h") {
        atEdges(step, now(), full, timers);
        return;
      }
      atEdges(step, now(), () => reads.request(new Set()), timers);
      await follow1h();
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
      timers.length = 0;
      await unlisten?.().catch(() => {});
      // A whole-window sum may take seconds at scale: not waited for past a moment (closing its connection ends it).
      await withDeadline(reads.idle(), 2000);
    },
  };
}
