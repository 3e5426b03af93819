import { drizzle } from "drizzle-orm/postgres-js";
import * as schema from "../../src/db/schema.ts";
import { windowViews } from "../../src/db/history.ts";
import { API, STEP, TOP_RATES, sql } from "../lib/env.ts";
import { rawLoad } from "../lib/generators.ts";
import { log } from "../lib/log.ts";
import { topUnderIngest } from "./top.ts";

/**
 * The windows at scale: BENCH_WINDOW_PRODUCTS (1 million) products with views in the last 24 hours (one hour row
 * each, written directly), then: one full ranking of each window (what the API's refresh costs), GET /top?window=24h
 * under ingest (p99 < 10 ms), and the freshness of /top?window=1h (202 -> listed with its views) under ingest.
 */
export async function windowsAtScale() {
  const n = Number(process.env.BENCH_WINDOW_PRODUCTS ?? 1_000_000);
  const t0 = performance.now();
  const [c] = await sql<{ n: string }[]>`SELECT count(*)::text AS n FROM products WHERE name LIKE 'win-%'`;
  for (let have = Number(c!.n); have < n; have += 250_000) {
    await sql`
      WITH p AS (INSERT INTO products (name) SELECT 'win-' || g FROM generate_series(${have + 1}::int, ${Math.min(n, have + 250_000)}::int) AS g RETURNING id)
      INSERT INTO view_hours (product_id, hour, views)
      SELECT id, date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 1 + (hashtext(id::text) & 1023) FROM p`;
  }
  await sql`ANALYZE products`;
  await sql`ANALYZE view_hours`;
  log(`windows: ${n} products with views in the last 24 h, made in ${Math.round((performance.now() - t0) / 1000)} s`);
  const db = drizzle(sql, { schema });
  const fullMs: Record<string, number[]> = {};
  for (const w of ["1h", "24h", "7d"] as const) {
    fullMs[w] = [];
    for (let i = 0; i < 3; i++) {
      const s = performance.now();
      await windowViews(db, w, Date.now(), { limit: 100 });
      fullMs[w].push(Math.round(performance.now() - s));
    }
  }
  log(
    `windows: one full ranking query, ms: ${Object.entries(fullMs)
      .map(([w, ms]) => `${w} ${ms.join("/")}`)
      .join("; ")}`,
  );
  let top: Awaited<ReturnType<typeof topUnderIngest>>;
  let fresh: Awaited<ReturnType<typeof windowFreshness>>;
  try {
    top = await topUnderIngest("top?window=24h", TOP_RATES.slice(0, 3), false, "&window=24h");
    fresh = await windowFreshness(Number(process.env.BENCH_FRESH_RATE ?? 2000));
  } finally {
    const t1 = performance.now();
    await sql`DELETE FROM view_hours WHERE product_id IN (SELECT id FROM products WHERE name LIKE 'win-%')`;
    await sql`DELETE FROM products WHERE name LIKE 'win-%'`;
    await sql`VACUUM ANALYZE products`;
    log(`windows: the ${n} products removed again in ${Math.round((performance.now() - t1) / 1000)} s`);
  }
  return { products: n, fullRankingQueryMs: fullMs, top, freshness1h: fresh };
}

/**
 * 202 -> listed in GET /top?window=1h with its views, at `rate` single views/s in the background: probe products get
 * 100 000 views a request (a batch of 100 x 1 000, with the ingest token) so they rank, and GET /top?window=1h is
 * polled every 5 ms until the probe's window_views include them.
 */
export async function windowFreshness(rate: number) {
  const ids = (
    await sql<{ id: string }[]>`INSERT INTO products (name) SELECT 'bench-probe-1h' FROM generate_series(1, 4) RETURNING id`
  ).map((p) => p.id);
  const samples: number[] = [];
  const load = rawLoad("view", API, rate, STEP);
  const until = performance.now() + Number.parseFloat(STEP) * 1000 - 1000;
  const body = (id: string) => JSON.stringify({ views: Array.from({ length: 100 }, () => ({ product_id: id, count: 1000 })) });
  const probe = async (id: string) => {
    let mine = 0;
    while (performance.now() < until) {
      await Bun.sleep(Math.random() * 250);
      const res = await fetch(`${API}/api/v1/products/views`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${process.env.INGEST_TOKEN ?? ""}` },
        body: body(id),
      });
      if (res.status !== 202) continue;
      mine += 100_000;
      const acked = performance.now();
      for (;;) {
        const list = (await (await fetch(`${API}/api/v1/products/top?window=1h&limit=100`)).json()) as Array<{
          id: string;
          window_views: number;
        }>;
        if ((list.find((x) => x.id === id)?.window_views ?? 0) >= mine) break;
        if (performance.now() - acked > 30_000) throw new Error(`probe ${id} not listed after 30 s`);
        await Bun.sleep(5);
      }
      samples.push(performance.now() - acked);
    }
  };
  await Promise.all(ids.map(probe));
  await load;
  samples.sort((a, b) => a - b);
  const pct = (p: number) => Math.round(samples[Math.min(samples.length - 1, Math.floor(samples.length * p))] ?? 0);
  const out = { rate, samples: samples.length, p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), max: pct(1) };
  log(
    `windows: freshness of /top?window=1h @${rate}/s: ${samples.length} probes, 202 -> listed p50=${out.p50}ms p95=${out.p95}ms p99=${out.p99}ms max=${out.max}ms`,
  );
  return out;
}
