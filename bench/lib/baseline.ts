// The bare Bun server (bench/baseline-server.ts) every ratio is measured against, in the same run.
import { join } from "node:path";
import { BASELINE, BASELINE_PORT, ROOT } from "./env.ts";
import { rawLoad } from "./generators.ts";
import { log } from "./log.ts";
import { cpuPerView, monitor } from "./proc.ts";

/** The bare server of this run (bench/baseline-server.ts): its CPU is sampled like the services'. */
export let baselineProcPid: number | null = null;

export async function startBaseline() {
  const proc = Bun.spawn(["bun", join(ROOT, "bench", "baseline-server.ts")], {
    env: { ...process.env, PORT: String(BASELINE_PORT) },
    stdout: "ignore",
    stderr: "inherit",
  });
  baselineProcPid = proc.pid;
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(BASELINE, { method: "POST", body: "{}" });
      return proc;
    } catch {
      await Bun.sleep(50);
    }
  }
  throw new Error("baseline server did not start");
}

/** One step of `POST /view` against the bare server, with its CPU per request. */
export async function baselineStep(rate: number, duration: string, label: string) {
  const stop = monitor({ baseline: baselineProcPid });
  const r = await rawLoad("view", BASELINE, rate, duration);
  const p = stop();
  const perView = cpuPerView(p, r.acceptedViews);
  log(
    `${label} @${rate}/s: ${r.passed ? "PASS" : "FAIL"} rps=${r.achievedRps} p50=${r.p50} p99=${r.p99} dropped=${r.dropped} cpu=${p.baseline?.cpuCores} ${r.generator}=${r.generatorCores} cpu/request µs=${perView.baseline}`,
  );
  return { ...r, processes: p, cpuPerViewUs: perView };
}
