import { API, STEP, WORKER, sql } from "../lib/env.ts";
import { rawLoad } from "../lib/generators.ts";
import { log } from "../lib/log.ts";
import { account, metric, settle, totalViews } from "../lib/steps.ts";

/**
 * 202 -> counted, at `rate` views/s of background load. Each of PROBES loops sends one view of its own product, waits
 * until Postgres counts it, then a random 0-250 ms, so a probe lands anywhere in the worker's flush cycle as a
 * client's view does: one sent right after a flush always waits a whole interval, and never the extra cycle a view
 * that reaches the worker just too late for a flush waits (what the tail is made of).
 */
export async function freshnessAt(rate: number) {
  const PROBES = 4;
  const ids = (
    await sql<{ id: string }[]>`INSERT INTO products (name) SELECT 'bench-probe' FROM generate_series(1, ${PROBES}) RETURNING id`
  ).map((p) => p.id);
  const samples: number[] = [];
  await settle();
  const before = await totalViews();
  const rowsBefore = await metric(WORKER, "worker_rows_updated_total");
  const viewsBefore = await metric(WORKER, "worker_views_applied_total");
  const load = rawLoad("view", API, rate, STEP);
  let expected = 0;
  const until = performance.now() + Number.parseFloat(STEP) * 1000 - 1000;
  const probe = async (id: string) => {
    let mine = 0;
    while (performance.now() < until) {
      await Bun.sleep(Math.random() * 250);
      const res = await fetch(`${API}/api/v1/products/view`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${process.env.INGEST_TOKEN ?? ""}` },
        body: JSON.stringify({ product_id: id }),
      });
      if (res.status !== 202) continue;
      mine++;
      expected++;
      const acked = performance.now();
      for (;;) {
        const [r] = await sql<{ v: string }[]>`SELECT view_count::text AS v FROM products WHERE id = ${id}`;
        if (Number(r!.v) >= mine) break;
        await Bun.sleep(5);
      }
      samples.push(performance.now() - acked);
    }
  };
  await Promise.all(ids.map(probe));
  const r = await load;
  const acc = await account(before, r.acceptedViews + expected, rowsBefore, viewsBefore);
  samples.sort((a, b) => a - b);
  const pct = (p: number) => Math.round(samples[Math.min(samples.length - 1, Math.floor(samples.length * p))] ?? 0);
  const out = { rate, samples: samples.length, p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), max: pct(1), load: r, accounting: acc };
  log(
    `freshness @${rate}/s: ${samples.length} probes at random moments, 202 -> counted p50=${out.p50}ms p95=${out.p95}ms p99=${out.p99}ms max=${out.max}ms; accounting=${acc.exact ? "exact" : "NOT EXACT"}`,
  );
  return out;
}
