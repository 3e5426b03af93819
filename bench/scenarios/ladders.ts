import { baselineStep } from "../lib/baseline.ts";
import { BATCH_RATES, RATES, STEP, TOP_RATES } from "../lib/env.ts";
import { log } from "../lib/log.ts";
import { ratio } from "../lib/report.ts";
import { ingestStep, stepSearch } from "../lib/steps.ts";
import { freshnessAt } from "./freshness.ts";
import { topUnderIngest } from "./top.ts";

// The ladders: each steps up its rates until one fails (p99 bound, errors, dropped requests, or inexact counts) and
// reports the best that passed; the API's ladders are compared with the bare server's.

/** POST /view against the bare Bun server, no service behind it. */
export const baselineLadder = () => stepSearch(RATES, (rate) => baselineStep(rate, STEP, "baseline"));

/** POST /view through the whole pipeline; then freshness at 80 % of the best rate, with probe products measured view by view. */
export async function ingestLadder(baselineBest: number) {
  const s = await stepSearch(RATES, (rate) => ingestStep("view", rate));
  const best = s.best?.rate ?? 0;
  const ingest = { ...s, ratioToBaseline: ratio(best, baselineBest) };
  return best ? { ingest, freshness: await freshnessAt(Math.round(best * 0.8)) } : { ingest };
}

/** POST /views with 100 views a request. */
export async function batchLadder() {
  const s = await stepSearch(BATCH_RATES, (rate) => ingestStep("batch", rate));
  log(`batch: best ${s.best?.rate ?? 0} req/s = ${(s.best?.rate ?? 0) * 100} views/s`);
  return { ...s, viewsPerSecond: (s.best?.rate ?? 0) * 100 };
}

/** GET /top?limit=10 under ingest, against the bare server's GET under the same ingest. */
export async function topLadder(baselineBest: number) {
  const s = await topUnderIngest("top", TOP_RATES, true);
  const topBest = s.best?.rate ?? 0;
  return {
    ...s,
    // The target's ratio: against the bare server's GET, under the same ingest and p99 bound.
    ratioToBaseline: ratio(topBest, s.baselineUnderIngest?.best?.rate ?? 0),
    // Against the bare server's POST ladder without background ingest and with p99 < 50 ms (what earlier
    // runs reported): kept to compare with them.
    ratioToIdleBaselinePost: ratio(topBest, baselineBest),
  };
}

/** Views and reads together (bench/k6/load.js's mixed scenario). */
export const mixedLadder = () => stepSearch(RATES, (rate) => ingestStep("mixed", rate));
