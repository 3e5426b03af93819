// The run's verdicts: every target with its goal and what was measured, and the latency plots.
/** part / whole to two decimals; null when there is no whole to compare with. */
export function ratio(part: number, whole: number): number | null {
  return whole ? Number((part / whole).toFixed(2)) : null;
}

export interface Target {
  name: string;
  goal: string;
  measured: string;
  met: boolean | null;
}

// The run's result object is built scenario by scenario and read back here as plain JSON.
// biome-ignore lint/suspicious/noExplicitAny: every field read below is checked where it is used
export type Json = any;

type Verdict = (name: string, goal: string, measured: string | null, met: boolean) => void;

/** The performance targets against this run's numbers; a scenario not run is "not measured", never met. */
export function targets(r: Record<string, Json>): Target[] {
  const out: Target[] = [];
  const t: Verdict = (name, goal, measured, met) =>
    out.push({ name, goal, measured: measured ?? "-", met: measured === null ? null : met });
  cpuTargets(r, t);
  ladderTargets(r, t);
  amplificationTarget(r, t);
  scaleTarget(r, t);
  keyTargets(r, t);
  historyTargets(r, t);
  return out;
}

/** CPU per view at a fixed rate, by process, against the bare server's. */
function cpuTargets(r: Record<string, Json>, t: Verdict) {
  const cpu = r.cpu;
  if (cpu) {
    const p = cpu.pipeline.cpuPerViewUs;
    const b = cpu.baseline.cpuPerViewUs.baseline;
    t(`pipeline CPU per view @${cpu.rate}/s`, "<= 150 µs", `${p.total} µs`, p.total <= 150);
    t("API CPU per view vs the bare server", "<= 1.5x", `${p.api} µs = ${(p.api / b).toFixed(2)}x of ${b} µs`, p.api <= 1.5 * b);
    t("Kafka CPU per view", "<= 30 µs", `${p.kafka} µs`, p.kafka <= 30);
    t("worker CPU per view", "<= 20 µs", `${p.worker} µs`, p.worker <= 20);
  } else
    for (const n of ["pipeline CPU per view", "API CPU per view vs the bare server", "Kafka CPU per view", "worker CPU per view"])
      t(n, "", null, false);
}

/** The ladders: sustained rates against the bare server's, RSS at the best rate, freshness at 80 % of it. */
function ladderTargets(r: Record<string, Json>, t: Verdict) {
  const ingest = r.ingest;
  const best = ingest?.best;
  t(
    "durable POST /view sustained vs baseline (p99 < 50 ms, exact)",
    ">= 0.8x",
    ingest ? `${best?.rate ?? 0}/s = ${ingest.ratioToBaseline}x` : null,
    !!best && ingest.ratioToBaseline >= 0.8 && ingest.steps.every((s: Json) => s.accounting.exact),
  );
  const batch = r.batch;
  t(
    "POST /views x100 (exact)",
    ">= 400000 views/s",
    batch ? `${batch.viewsPerSecond} views/s` : null,
    !!batch && batch.viewsPerSecond >= 400_000 && batch.steps.every((s: Json) => s.accounting.exact),
  );
  const top = r.top;
  t(
    "GET /top?limit=10 under ingest vs the bare server's GET under the same ingest (p99 < 10 ms)",
    ">= 0.8x",
    top
      ? `${top.best?.rate ?? 0}/s vs ${top.baselineUnderIngest?.best?.rate ?? 0}/s = ${top.ratioToBaseline}x (vs the idle POST baseline: ${top.ratioToIdleBaselinePost}x)`
      : null,
    !!top && top.ratioToBaseline !== null && top.ratioToBaseline >= 0.8,
  );
  const rss = best?.processes;
  t(
    "RSS at the best ingest rate",
    "api < 150 MB, worker < 150 MB",
    rss ? `api ${rss.api?.peakRssMB} MB, worker ${rss.worker?.peakRssMB} MB` : null,
    !!rss && rss.api?.peakRssMB < 150 && rss.worker?.peakRssMB < 150,
  );
  const f = r.freshness;
  t("freshness 202 -> counted at 80 % of max", "p99 < 250 ms", f ? `p99 ${f.p99} ms @${f.rate}/s` : null, !!f && f.p99 < 250);
}

/** Write amplification from the batch steps: rows updated per second against views per second. */
function amplificationTarget(r: Record<string, Json>, t: Verdict) {
  const batch = r.batch;
  const steps = (batch?.steps ?? []).filter((s: Json) => s.passed || s === batch.steps[0]);
  if (steps.length >= 2) {
    const lo = steps[0],
      hi = steps[steps.length - 1];
    const rows = (s: Json) => s.acceptedViews * s.accounting.rowsUpdatedPerView;
    const viewsX = hi.acceptedViews / lo.acceptedViews;
    const rowsX = rows(hi) / rows(lo);
    // "10x the views for <= 3x the rows" is rows ~ views^k with k <= log 3 / log 10 = 0.48, at any ratio.
    const k = Math.log(rowsX) / Math.log(viewsX);
    t(
      "write amplification (batch steps)",
      "rows grow <= 3x for 10x views (k <= 0.48)",
      `${viewsX.toFixed(1)}x views -> ${rowsX.toFixed(1)}x rows (k = ${k.toFixed(2)})`,
      k <= Math.log(3) / Math.log(10),
    );
  } else t("write amplification (batch steps)", "rows grow <= 3x for 10x views", null, false);
}

/** GET /top with 10 million products (the top10m scenario). */
function scaleTarget(r: Record<string, Json>, t: Verdict) {
  const big = r.top10m;
  t(
    "/top with 10 million products",
    "p99 < 10 ms, freshness p99 < 500 ms",
    big
      ? `${big.products} products: /top p99 ${big.top.best?.p99 ?? "-"} ms at ${big.top.best?.rate ?? 0}/s, freshness p99 ${big.freshness.p99} ms, refresh per flush ${big.noticeMerges?.meanMs ?? "-"} ms merged from the notice (${big.noticeMerges?.merges ?? 0}×) or ${big.partialRefresh.meanMs} ms read (${big.partialRefresh.refreshes}×) (a full ranking: ${big.fullRankingQueryMs[1]} ms)`
      : null,
    !!big && !!big.top.best && big.top.best.p99 < 10 && big.freshness.p99 < 500,
  );
}

/** An Idempotency-Key on every request costs at most 15 % in CPU per view and in throughput. */
function keyTargets(r: Record<string, Json>, t: Verdict) {
  const k = r.keys;
  const exact = (s: Json) => s.accounting.exact;
  t(
    "CPU per view with an Idempotency-Key on every request vs without (exact)",
    "<= 1.15x",
    k ? `${k.keyed.cpuPerViewUs} vs ${k.plain.cpuPerViewUs} µs = ${k.cpuRatio}x @${k.rate}/s` : null,
    !!k && k.cpuRatio !== null && k.cpuRatio <= 1.15 && [...k.plain.steps, ...k.keyed.steps].every(exact),
  );
  t(
    "POST /view throughput with a key on every request vs without (saturated, exact)",
    ">= 0.85x",
    k ? `${k.keyedRps} vs ${k.plainRps} views/s offered ${k.offered}/s = ${k.throughputRatio}x` : null,
    !!k && k.throughputRatio !== null && k.throughputRatio >= 0.85 && [...k.plainSat, ...k.keyedSat].every(exact),
  );
}

/** The history's costs: rows per flush against a flush without it, and the windows at scale. */
function historyTargets(r: Record<string, Json>, t: Verdict) {
  const rows = r.cpu?.rowsPerFlush;
  t(
    "rows written per flush, with the history / without",
    "<= 2.2x",
    rows ? `${rows.ratio}x (${rows.productRows} product + ${rows.historyRows} history rows)` : null,
    !!rows && rows.ratio <= 2.2,
  );
  const w = r.windows;
  t(
    "GET /top?window=24h under ingest, 1 million products in the window",
    "p99 < 10 ms",
    w ? `p99 ${w.top.best?.p99 ?? "-"} ms at ${w.top.best?.rate ?? 0}/s (a full 24 h ranking: ${w.fullRankingQueryMs["24h"][1]} ms)` : null,
    !!w && !!w.top.best && w.top.best.p99 < 10,
  );
  t(
    "freshness of /top?window=1h (202 -> listed)",
    "p99 < 1 s",
    w ? `p99 ${w.freshness1h.p99} ms @${w.freshness1h.rate}/s` : null,
    !!w && w.freshness1h.p99 < 1000,
  );
}

/** Each step search's p50 and p99 against the offered rate, one SVG per scenario (baseline drawn alongside). */
export function latencyPlots(result: Record<string, Json>): [string, string][] {
  const series = (key: string) =>
    ((result[key]?.steps ?? []) as Json[]).map((s) => ({ rate: s.rate as number, p50: s.p50 as number, p99: s.p99 as number }));
  const base = series("baseline");
  const out: [string, string][] = [];
  for (const key of ["ingest", "batch", "top", "mixed"]) {
    const steps = series(key);
    if (steps.length === 0) continue;
    const lines = [
      { name: `${key} p99`, color: "#c0392b", points: steps.map((s) => [s.rate, s.p99] as [number, number]) },
      { name: `${key} p50`, color: "#e67e22", points: steps.map((s) => [s.rate, s.p50] as [number, number]) },
    ];
    if (key !== "batch")
      lines.push({ name: "baseline p99", color: "#7f8c8d", points: base.map((s) => [s.rate, s.p99] as [number, number]) });
    out.push([`${key}-latency`, svgPlot(`${key}: latency vs offered rate`, lines)]);
  }
  return out;
}

export function svgPlot(title: string, lines: { name: string; color: string; points: [number, number][] }[]): string {
  const [W, H, L, R, T, B] = [640, 360, 60, 20, 40, 50];
  const all = lines.flatMap((l) => l.points);
  const maxX = Math.max(...all.map((p) => p[0]), 1);
  const maxY = Math.max(...all.map((p) => p[1]), 1);
  const x = (v: number) => (L + (v / maxX) * (W - L - R)).toFixed(1);
  const y = (v: number) => (H - B - (v / maxY) * (H - T - B)).toFixed(1);
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const grid = ticks.map(
    (t) =>
      `<line x1="${L}" x2="${W - R}" y1="${y(t * maxY)}" y2="${y(t * maxY)}" stroke="#e3e6ec"/>` +
      `<text x="${L - 6}" y="${y(t * maxY)}" text-anchor="end">${Math.round(t * maxY)}</text>` +
      `<text x="${x(t * maxX)}" y="${H - B + 18}" text-anchor="middle">${Math.round(t * maxX)}</text>`,
  );
  const paths = lines.map((l, i) => {
    const d = l.points.map((p, j) => `${j ? "L" : "M"}${x(p[0])},${y(p[1])}`).join("");
    const dots = l.points.map((p) => `<circle cx="${x(p[0])}" cy="${y(p[1])}" r="3" fill="${l.color}"/>`).join("");
    return `<path d="${d}" fill="none" stroke="${l.color}" stroke-width="2"/>${dots}<text x="${L + 8}" y="${T + 14 * i}" fill="${l.color}">${l.name}</text>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<text x="${L}" y="20" font-size="13">${title}</text>`,
    ...grid,
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">offered rate (req/s)</text>`,
    `<text x="14" y="${(T + H - B) / 2}" transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">latency (ms)</text>`,
    ...paths,
    "</svg>",
    "",
  ].join("\n");
}
