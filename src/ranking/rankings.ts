import type { Config } from "../config.ts";
import { connect, type Database } from "../db/client.ts";
import type { Rank } from "../domain/product.ts";
import type { Window } from "../domain/history.ts";
import { createTopStream } from "../http/top-stream.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../metrics.ts";
import { createTopCache } from "./top.ts";
import { createWindowTop, windowReads } from "./top-window.ts";

// Every ranking an API serves, and their live streams: all time by views and by unique viewers (top.ts), and the
// windows (top-window.ts). Started and stopped together.

/** A window re-rank may take this long (its own connections' statement_timeout too). */
const WINDOW_READ_TIMEOUT_MS = 60_000;

export async function startRankings(database: Database, config: Config, metrics: Registry, log: Logger) {
  const topLog = log.child({ component: "top" });
  const refresh = { refreshMs: config.http.topRefreshMs, fullRefreshMs: config.http.topFullRefreshMs };
  const top = createTopCache(database, topLog, refresh, metrics);
  await top.start();
  const topUnique = createTopCache(database, topLog, { ...refresh, by: "unique_viewers" });
  await topUnique.start();
  // A window's re-rank sums all its rows: seconds at a million products (bench/RESULTS.md), so it has connections of
  // its own with a longer statement timeout, and never waits behind (or holds up) the view path's lookups.
  const windowDb = connect({ ...config.db, poolSize: 2 }, "product-views-api-windows", WINDOW_READ_TIMEOUT_MS);
  const windowLog = log.child({ component: "top-window" });
  const opts = { refreshMs: config.history.windowRefreshMs, reads: windowReads(metrics), readTimeoutMs: WINDOW_READ_TIMEOUT_MS };
  const windows = {
    "1h": createWindowTop(windowDb, windowLog, "1h", opts),
    "24h": createWindowTop(windowDb, windowLog, "24h", opts),
    "7d": createWindowTop(windowDb, windowLog, "7d", opts),
  };
  await Promise.all(Object.values(windows).map((w) => w.start()));
  // Heartbeats well inside the idle timeout, which would otherwise cut a quiet stream. Shared bounds: maxClients
  // counts every ranking's streams together.
  const streamOptions = {
    heartbeatMs: Math.min(5000, (config.http.idleTimeoutS * 1000) / 2),
    maxClients: config.http.topStreamMaxClients,
    maxPerAddress: config.http.topStreamMaxPerAddress,
    clients: new Set<() => void>(),
    perAddress: new Map<string, number>(),
  };
  const sources = { view_count: top, unique_viewers: topUnique, ...windows };
  const streams = Object.fromEntries(Object.entries(sources).map(([k, s]) => [k, createTopStream(s, streamOptions)])) as Record<
    keyof typeof sources,
    ReturnType<typeof createTopStream>
  >;
  const key = (by: Rank, window: Window | "all") => (window === "all" ? by : window);
  return {
    /** The all-time ranking by views: told at once of a product created with views. */
    top,
    topJson: (limit: number, by: Rank, window: Window | "all") => sources[key(by, window)].topJson(limit),
    topStream: (limit: number, signal: AbortSignal, by: Rank, address: string, window: Window | "all") =>
      streams[key(by, window)].open(limit, signal, address),
    /** Ends every live stream (they never end on their own: a server could not drain). */
    closeStreams: () => streams.view_count.closeAll(),
    async stop() {
      await top.stop();
      await topUnique.stop();
      await Promise.all(Object.values(windows).map((w) => w.stop()));
      await windowDb.close();
    },
  };
}
