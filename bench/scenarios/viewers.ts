import { log } from "../lib/log.ts";
import { ingestStep } from "../lib/steps.ts";

/**
 * What the public path's rules cost (ingest/admission.ts: viewer hash, bot check, two rate limits, the repeat memory):
 * single views at BENCH_CPU_RATE with the ingest token and as the public (a distinct viewer per request through a
 * trusted proxy's X-Forwarded-For), alternated twice in one run; CPU per view of each process.
 */
export async function viewerRulesCost() {
  const rate = Number(process.env.BENCH_CPU_RATE ?? 2000);
  const duration = process.env.BENCH_CPU_DURATION ?? "20s";
  const steps: { path: string; cpuPerViewUs: Record<string, number | undefined>; exact: boolean }[] = [];
  for (let round = 0; round < 2; round++) {
    for (const path of ["token", "public"]) {
      const s = await ingestStep(
        "view",
        rate,
        duration,
        path === "public" ? { PUBLIC: "1", PUBLIC_OFFSET: String(round * 1_000_000) } : {},
      );
      steps.push({ path, cpuPerViewUs: s.cpuPerViewUs, exact: s.accounting.exact });
    }
  }
  const mean = (path: string, k: string) => {
    const xs = steps.filter((s) => s.path === path).map((s) => s.cpuPerViewUs[k] ?? 0);
    return Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
  };
  const ratio = (k: string) => (mean("token", k) ? +(mean("public", k) / mean("token", k)).toFixed(2) : 0);
  log(
    `viewer rules @${rate}/s, µs per view (token / public): api ${mean("token", "api")} / ${mean("public", "api")}, postgres ${mean("token", "postgres")} / ${mean("public", "postgres")}, pipeline ${mean("token", "total")} / ${mean("public", "total")} (${ratio("total")}x)`,
  );
  return { rate, duration, steps, pipelineRatio: ratio("total"), postgresRatio: ratio("postgres"), apiRatio: ratio("api") };
}
