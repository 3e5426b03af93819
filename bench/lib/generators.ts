// The two load generators a step can run: k6 (bench/k6/load.js) and bench/load.ts, each reporting one LoadResult.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BASELINE, BODY_FILES, DATA, K6, RESULTS, ROOT, RUN_STAMP } from "./env.ts";

export interface LoadResult {
  scenario: string;
  rate: number;
  passed: boolean;
  reqs: number;
  achievedRps: number;
  failedRate: number;
  dropped: number;
  p50: number;
  p95: number;
  p99: number;
  acceptedViews: number;
  /** Which load generator ran the step: k6, or bench/load.ts (the view, batch and bare-server ladders). */
  generator: "k6" | "load";
  /** The load generator's own CPU over its run (k6's init stage included), in cores: it shares the machine's cores. */
  generatorCores: number;
}

export async function k6(
  scenario: string,
  target: string,
  rate: number,
  duration: string,
  extra: Record<string, string> = {},
  onSpawn?: (p: ReturnType<typeof Bun.spawn>) => void,
): Promise<LoadResult> {
  const out = join(DATA, `k6-${scenario}-${rate}-${Date.now()}.json`);
  const label = `${target === BASELINE ? "baseline-" : ""}${scenario}${extra.KEYS === "1" ? "-keyed" : ""}`;
  const proc = Bun.spawn([K6, "run", "--quiet", "--no-color", `--summary-export=${out}`, join(ROOT, "bench", "k6", "load.js")], {
    env: {
      ...process.env,
      SCENARIO: scenario,
      TARGET: target,
      RATE: String(rate),
      DURATION: duration,
      IDS: join(DATA, "ids.json"),
      BODIES: join(DATA, "batch-bodies"),
      BODY_FILES: String(BODY_FILES),
      // k6's own HTML report of the step (its web dashboard, exported; port 0: steps may run side by side).
      K6_WEB_DASHBOARD: "true",
      K6_WEB_DASHBOARD_PORT: "0",
      K6_WEB_DASHBOARD_PERIOD: "2s",
      K6_WEB_DASHBOARD_EXPORT: join(RESULTS, `${RUN_STAMP}-${label}-${rate}.html`),
      ...extra,
    },
    stdout: "ignore",
    stderr: "pipe",
  });
  onSpawn?.(proc);
  const started = performance.now();
  const code = await proc.exited;
  const k6CpuUs = Number(proc.resourceUsage()?.cpuTime.total ?? 0);
  const k6Cores = round(k6CpuUs / 1000 / (performance.now() - started));
  const s = JSON.parse(readFileSync(out, "utf8")) as { metrics: Record<string, Record<string, number>> };
  // The steady part at `rate` (bench/k6/load.js ramps up for 2 s first); the whole run if the script has no phases.
  const d = s.metrics["http_req_duration{phase:steady}"] ?? s.metrics.http_req_duration ?? {};
  const reqs = s.metrics["http_reqs{phase:steady}"]?.count ?? s.metrics.http_reqs?.count ?? 0;
  const secs = Number.parseFloat(duration);
  return {
    scenario,
    rate,
    // k6 exits 99 when a threshold fails.
    passed: code === 0,
    reqs,
    achievedRps: Math.round(reqs / secs),
    failedRate: s.metrics.http_req_failed?.value ?? 0,
    dropped: s.metrics.dropped_iterations?.count ?? 0,
    p50: round(d.med),
    p95: round(d["p(95)"]),
    p99: round(d["p(99)"]),
    acceptedViews: s.metrics.accepted_views?.count ?? 0,
    generator: "k6",
    generatorCores: k6Cores,
  };
}

/**
 * A view or batch step by bench/load.ts (the same open model, ramp and thresholds as k6's) against the API or the bare
 * server: k6 spent ~350 µs of CPU per 100-view request and ~180 µs per single view, and those ladders measured it
 * rather than the service (RESULTS.md, the runs of 2026-12-06 (a2e9931) and 2026-12-07 (798e7a3)).
 */
export async function rawLoad(
  scenario: "view" | "batch",
  target: string,
  rate: number,
  duration: string,
  extra: Record<string, string> = {},
): Promise<LoadResult> {
  const proc = Bun.spawn(["bun", join(ROOT, "bench", "load.ts")], {
    env: {
      ...process.env,
      ...extra,
      TARGET: target,
      ROUTE: scenario === "batch" ? "/api/v1/products/views" : "/api/v1/products/view",
      RATE: String(rate),
      DURATION: duration,
      BODIES: join(DATA, `${scenario}-bodies`),
      BODY_FILES: String(BODY_FILES),
    },
    stdout: "pipe",
    stderr: "inherit",
  });
  const started = performance.now();
  const out = await new Response(proc.stdout).text();
  const code = await proc.exited;
  const cores = round(Number(proc.resourceUsage()?.cpuTime.total ?? 0) / 1000 / (performance.now() - started));
  if (code !== 0) throw new Error(`bench/load.ts exited ${code}`);
  const r = JSON.parse(out.trim().split("\n").pop()!) as Record<string, number | boolean>;
  const secs = Number.parseFloat(duration);
  return {
    scenario,
    rate,
    passed: r.passed === true,
    reqs: Number(r.reqs),
    achievedRps: Math.round(Number(r.reqs) / secs),
    failedRate: Number(r.failedRate),
    dropped: Number(r.dropped),
    p50: round(Number(r.p50)),
    p95: round(Number(r.p95)),
    p99: round(Number(r.p99)),
    acceptedViews: Number(r.acceptedViews),
    generator: "load",
    generatorCores: cores,
  };
}

export const round = (x: number | undefined) => Math.round((x ?? 0) * 100) / 100;
