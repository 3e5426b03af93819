import { log } from "../lib/log.ts";
import { ratio } from "../lib/report.ts";
import { ingestStep } from "../lib/steps.ts";

/**
 * The cost of idempotency: the same POST /view load without and with an Idempotency-Key on every request,
 * side by side in one run: CPU per view of each process at a fixed rate, then the highest rate each sustains.
 */
export async function keyCost() {
  const rate = Number(process.env.BENCH_CPU_RATE ?? 2000);
  const duration = process.env.BENCH_CPU_DURATION ?? "20s";
  const KEYED = { KEYS: "1" };
  // Both sides by k6, the generator that can send keys, so that the throughput ratio compares like with like.
  await ingestStep("view", rate, "15s", {}, "k6"); // warm-up, not measured; what drift is left falls on both sides (below)
  // Alternated twice (plain, keyed, plain, keyed), so a drift of the machine during the run (a JVM still
  // compiling, autovacuum) falls on both sides; each side's CPU per view is over its two steps' views.
  const plain: Awaited<ReturnType<typeof ingestStep>>[] = [];
  const keyed: typeof plain = [];
  for (let i = 0; i < 2; i++) {
    plain.push(await ingestStep("view", rate, duration, {}, "k6"));
    keyed.push(await ingestStep("view", rate, duration, KEYED));
  }
  const perView = (steps: typeof plain, k: string) => {
    const views = steps.reduce((n, s) => n + s.acceptedViews, 0);
    return Math.round(steps.reduce((n, s) => n + (s.cpuPerViewUs[k] ?? 0) * s.acceptedViews, 0) / Math.max(1, views));
  };
  const sides = (k: string) => `${perView(plain, k)} / ${perView(keyed, k)}`;
  const plainTotal = perView(plain, "total");
  const keyedTotal = perView(keyed, "total");
  const cpuRatio = ratio(keyedTotal, plainTotal);
  log(
    `keys: cpu per view @${rate}/s without / with a key (µs, two steps each): api ${sides("api")}, kafka ${sides("kafka")}, ` +
      `worker ${sides("worker")}, postgres ${sides("postgres")}, total ${plainTotal} / ${keyedTotal} (${cpuRatio}x)`,
  );
  // Throughput: the rate each side achieves when offered more than the machine can take (p99 thresholds say
  // nothing here: both sides fail them), alternated like the CPU steps; accounting must stay exact.
  const offered = Number(process.env.BENCH_KEY_SATURATION ?? 6000);
  const plainSat: typeof plain = [];
  const keyedSat: typeof plain = [];
  for (let i = 0; i < 2; i++) {
    plainSat.push(await ingestStep("view", offered, duration, {}, "k6"));
    keyedSat.push(await ingestStep("view", offered, duration, KEYED));
  }
  const achieved = (steps: typeof plain) => Math.round(steps.reduce((n, s) => n + s.achievedRps, 0) / steps.length);
  const plainRps = achieved(plainSat);
  const keyedRps = achieved(keyedSat);
  log(`keys: achieved views/s when offered ${offered}/s, without / with a key: ${plainRps} / ${keyedRps} (${ratio(keyedRps, plainRps)}x)`);
  return {
    rate,
    plain: { steps: plain, cpuPerViewUs: plainTotal },
    keyed: { steps: keyed, cpuPerViewUs: keyedTotal },
    cpuRatio,
    offered,
    plainSat,
    keyedSat,
    plainRps,
    keyedRps,
    throughputRatio: ratio(keyedRps, plainRps),
  };
}
