import { threadsPerView, threadTicks } from "../threads.ts";
import { baselineStep } from "../lib/baseline.ts";
import { WARM_STEPS_MAX } from "../lib/env.ts";
import { log } from "../lib/log.ts";
import { monitor, pidOf, postgresPid, processAgeS } from "../lib/proc.ts";
import { flushRows, flushRowsSince, ingestStep, settle } from "../lib/steps.ts";

/**
 * Not measured: 15 s steps at the rate until the pipeline's CPU per view settles (two steps in a row within 10 %, the
 * whole pipeline's and the broker's), at most WARM_STEPS_MAX. Just started, every process costs more: the broker
 * runs its JIT compilers for minutes (with one fixed 15 s warm-up the same code measured Kafka at 228 and 92 µs per
 * view ~5 and ~7 minutes after a broker start, 79 after 15 minutes, 35-45 after half an hour; 2026-11-26), and a
 * restarted API or worker compiles and fills its caches. Every step's line is printed, so the transient stays
 * visible.
 */
export async function warmUntilSteady(rate: number) {
  const steps: { total: number; kafka: number }[] = [];
  const age = processAgeS(pidOf("kafka"));
  log(
    `cpu: warming up at ${rate}/s until the pipeline's CPU per view settles (broker up ${age ?? "?"} s, API up ${processAgeS(pidOf("api")) ?? "?"} s)`,
  );
  const close = (a: number, b: number) => Math.abs(a - b) <= Math.max(b * 0.1, 3);
  let settled = false;
  for (let i = 0; i < WARM_STEPS_MAX && !settled; i++) {
    const p = (await ingestStep("view", rate, "15s")).cpuPerViewUs;
    const step = { total: p.total ?? 0, kafka: p.kafka ?? 0 };
    const prev = steps.at(-1);
    steps.push(step);
    // Both: the total can flatten while the broker, the largest drift, is still falling (a fresh broker, 2026-11-26:
    // totals 261 -> 237 within 10 % while Kafka went 83 -> 66).
    settled = prev !== undefined && close(step.total, prev.total) && close(step.kafka, prev.kafka);
  }
  log(
    `cpu: warm-up ${steps.length} step(s), µs per view total ${steps.map((s) => s.total).join(" -> ")} (kafka ${steps.map((s) => s.kafka).join(" -> ")})` +
      (settled ? "" : " NOT settled: the figures below may include warm-up"),
  );
  return { steps, settled, brokerAgeS: age };
}

/**
 * The CPU measurement: the bare server and the whole pipeline at the same fixed rate, one after the
 * other in one run; CPU per accepted view of each process tree.
 */
export async function cpuAtFixedRate() {
  const rate = Number(process.env.BENCH_CPU_RATE ?? 2000);
  const duration = process.env.BENCH_CPU_DURATION ?? "20s";
  const warmUp = await warmUntilSteady(rate);
  const baseline = await baselineStep(rate, duration, "cpu: baseline");
  // What each process spends with no traffic at all (timers, heartbeats, the broker's own housekeeping): a cost
  // per second, not per view, so its share per view shrinks as the rate grows.
  await settle();
  const idleStop = monitor({ api: pidOf("api"), kafka: pidOf("kafka"), worker: pidOf("worker"), postgres: postgresPid() });
  await Bun.sleep(5000);
  const idle = idleStop();
  const idleUs = Object.fromEntries(Object.entries(idle).map(([k, v]) => [k, Math.round((v.cpuCores / rate) * 1e6)]));
  log(
    `cpu: idle cores api=${idle.api?.cpuCores} kafka=${idle.kafka?.cpuCores} worker=${idle.worker?.cpuCores} postgres=${idle.postgres?.cpuCores} ` +
      `(= µs per view at ${rate}/s: api=${idleUs.api} kafka=${idleUs.kafka} worker=${idleUs.worker} postgres=${idleUs.postgres})`,
  );
  const apiThreads0 = threadTicks(pidOf("api"));
  const workerThreads0 = threadTicks(pidOf("worker"));
  const rows0 = await flushRows();
  const pipeline = await ingestStep("view", rate, duration);
  const rows = flushRowsSince(rows0, await flushRows());
  log(
    `cpu: rows per flush: ${rows.productRows} product rows, ${rows.historyRows} history rows (+ about 1 minute mark) over ${rows.flushes} flushes; ` +
      `written per flush with history / without: ${rows.ratio}x`,
  );
  const apiThreads = threadsPerView(apiThreads0, threadTicks(pidOf("api")), pipeline.acceptedViews);
  const workerThreads = threadsPerView(workerThreads0, threadTicks(pidOf("worker")), pipeline.acceptedViews);
  const b = baseline.cpuPerViewUs.baseline ?? 0;
  const p = pipeline.cpuPerViewUs;
  log(
    `cpu per accepted view @${rate}/s (µs): baseline=${b} api=${p.api} (${b ? (p.api! / b).toFixed(2) : "?"}x baseline) kafka=${p.kafka} worker=${p.worker} postgres=${p.postgres} pipeline=${p.total}`,
  );
  const fmt = (t: Record<string, number>) =>
    Object.entries(t)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
  log(`cpu by thread (µs per view): api ${fmt(apiThreads)}; worker ${fmt(workerThreads)}`);
  return {
    rate,
    duration,
    warmUp,
    baseline,
    idleCores: idle,
    idleUsPerView: idleUs,
    pipeline,
    apiThreads,
    workerThreads,
    rowsPerFlush: rows,
  };
}
