// One measured step: load at a rate, the services' CPU and RSS beside it, and the accounting after it (every view
// that got 202 counted exactly once); and the ladder that steps rates up until one fails.
import { API, STEP, WORKER, sql } from "./env.ts";
import { k6, rawLoad } from "./generators.ts";
import { log } from "./log.ts";
import { cpuPerView, monitor, pidOf, postgresPid } from "./proc.ts";

export async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(name) && !l.startsWith("#") && (l[name.length] === " " || l[name.length] === "{"))
    .reduce((s, l) => s + Number(l.split(" ").pop()), 0);
}

export async function totalViews(): Promise<number> {
  const [r] = await sql<{ s: string }[]>`SELECT coalesce(sum(view_count), 0)::text AS s FROM products`;
  return Number(r!.s);
}

/** After an ingest run: the counts must grow by exactly the views that got 202, and how long that took. */
export async function account(before: number, accepted: number, rowsBefore: number, viewsBefore: number) {
  const t0 = performance.now();
  let now = await totalViews();
  while (now - before < accepted && performance.now() - t0 < 60_000) {
    await Bun.sleep(20);
    now = await totalViews();
  }
  const completeMs = Math.round(performance.now() - t0);
  await Bun.sleep(1500); // a late double count would show here
  now = await totalViews();
  const rows = (await metric(WORKER, "worker_rows_updated_total")) - rowsBefore;
  const views = (await metric(WORKER, "worker_views_applied_total")) - viewsBefore;
  return {
    accepted,
    counted: now - before,
    lost: Math.max(0, accepted - (now - before)),
    doubled: Math.max(0, now - before - accepted),
    exact: now - before === accepted,
    completeAfterLastResponseMs: completeMs,
    rowsUpdatedPerView: views > 0 ? Number((rows / views).toFixed(4)) : 0,
    lagAtEnd: await metric(WORKER, "worker_consumer_lag_messages"),
  };
}

/** Waits until no count moves for 3 s: views of an earlier step must not be booked to this one. */
export async function settle() {
  let last = await totalViews();
  let stableSince = performance.now();
  const t0 = performance.now();
  while (performance.now() - stableSince < 3000 && performance.now() - t0 < 60_000) {
    await Bun.sleep(100);
    const now = await totalViews();
    if (now !== last) {
      last = now;
      stableSince = performance.now();
    }
  }
}

/** Runs one ingest-like step with monitoring and accounting. */
export async function ingestStep(
  scenario: string,
  rate: number,
  duration = STEP,
  extra: Record<string, string> = {},
  // Plain view and batch steps by bench/load.ts; keyed, mixed and GET steps by k6 (load.ts sends no keys or GETs).
  generator: "k6" | "load" = (scenario === "view" || scenario === "batch") && (Object.keys(extra).length === 0 || extra.PUBLIC === "1")
    ? "load"
    : "k6",
) {
  await settle();
  const before = await totalViews();
  const rowsBefore = await metric(WORKER, "worker_rows_updated_total");
  const viewsBefore = await metric(WORKER, "worker_views_applied_total");
  const stop = monitor({ api: pidOf("api"), kafka: pidOf("kafka"), worker: pidOf("worker"), postgres: postgresPid() });
  const r =
    generator === "load"
      ? await rawLoad(scenario as "view" | "batch", API, rate, duration, extra)
      : await k6(scenario, API, rate, duration, extra);
  // The worker and Postgres finish the step's views after the load stops: their CPU is read once the counts are in.
  const acc = await account(before, r.acceptedViews, rowsBefore, viewsBefore);
  const proc = stop();
  const perView = cpuPerView(proc, r.acceptedViews);
  const line = { ...r, accounting: acc, processes: proc, cpuPerViewUs: perView };
  log(
    `${scenario}${extra.KEYS === "1" ? " (Idempotency-Key on every request)" : ""}${extra.PUBLIC === "1" ? " (public: a viewer per request)" : ""} @${rate}/s: ${r.passed ? "PASS" : "FAIL"} rps=${r.achievedRps} p50=${r.p50} p99=${r.p99} failed=${(r.failedRate * 100).toFixed(3)}% dropped=${r.dropped} ` +
      `accounting=${acc.exact ? "exact" : `LOST ${acc.lost} DOUBLED ${acc.doubled}`} complete+${acc.completeAfterLastResponseMs}ms rows/view=${acc.rowsUpdatedPerView} ` +
      `rss api=${proc.api?.peakRssMB}MB worker=${proc.worker?.peakRssMB}MB cpu api=${proc.api?.cpuCores} worker=${proc.worker?.cpuCores} ${r.generator}=${r.generatorCores} ` +
      `cpu/view µs api=${perView.api} kafka=${perView.kafka} worker=${perView.worker} postgres=${perView.postgres} total=${perView.total}`,
  );
  return line;
}

/** Highest rate of `rates` that passes (stops at the first failure after a pass). */
export async function stepSearch<T extends { passed: boolean; rate: number }>(rates: number[], run: (rate: number) => Promise<T>) {
  const steps: T[] = [];
  for (const rate of rates) {
    const r = await run(rate);
    steps.push(r);
    if (!r.passed) break;
  }
  const best = steps.filter((s) => s.passed).pop() ?? null;
  return { best, steps };
}

/** Sum and count of a histogram series on /metrics, e.g. top_refresh_seconds{kind="partial"}. */
export async function histogram(url: string, name: string, labels: string) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (suffix: string) =>
    Number(
      text
        .split("\n")
        .find((l) => l.startsWith(`${name}_${suffix}${labels} `))
        ?.split(" ")
        .pop() ?? 0,
    );
  return { sum: value("sum"), count: value("count") };
}

/** The worker's row counters: flushes, product rows updated, history (product, minute) rows written. */
export async function flushRows() {
  return {
    flushes: await metric(WORKER, "worker_flushes_total"),
    productRows: await metric(WORKER, "worker_rows_updated_total"),
    historyRows: await metric(WORKER, "worker_history_rows_total"),
  };
}

/**
 * Rows per flush between two readings. Without history a flush writes its product rows and its partitions' offset
 * rows (counted as one here, which makes the ratio larger, not smaller); with it, also the history rows and a mark per
 * minute written (one).
 */
export function flushRowsSince(a: Awaited<ReturnType<typeof flushRows>>, b: Awaited<ReturnType<typeof flushRows>>) {
  const flushes = b.flushes - a.flushes;
  const per = (n: number) => (flushes > 0 ? Number((n / flushes).toFixed(1)) : 0);
  const productRows = per(b.productRows - a.productRows);
  const historyRows = per(b.historyRows - a.historyRows);
  const ratio = productRows > 0 ? Number(((productRows + historyRows + 2) / (productRows + 1)).toFixed(2)) : null;
  return { flushes, productRows, historyRows, ratio };
}
