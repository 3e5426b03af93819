// The bench driver: seeds 100 000 products, runs the chosen scenarios (one file each in scenarios/) against the
// running stack and a bare Bun baseline, checks the accounting after every ingest step, samples RSS and CPU, and
// writes bench/results/<timestamp>.json plus a readable .md summary with every target's verdict. Started by
// bench/run.sh (`make bench`, `make soak`); lib/ holds what the scenarios share.
//
//   bun bench/run.ts [all|cpu|baseline|ingest|fresh|batch|top|mixed|keys|viewers|windows|soak|top10m]
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startBaseline } from "./lib/baseline.ts";
import { DATA, RESULTS, RUN_STAMP, STEP, sql } from "./lib/env.ts";
import { lines, log } from "./lib/log.ts";
import { latencyPlots, targets } from "./lib/report.ts";
import { seed, versions } from "./lib/setup.ts";
import { cpuAtFixedRate } from "./scenarios/cpu.ts";
import { freshnessAt } from "./scenarios/freshness.ts";
import { keyCost } from "./scenarios/keys.ts";
import { baselineLadder, batchLadder, ingestLadder, mixedLadder, topLadder } from "./scenarios/ladders.ts";
import { soak } from "./scenarios/soak.ts";
import { topAtScale } from "./scenarios/top.ts";
import { viewerRulesCost } from "./scenarios/viewers.ts";
import { windowsAtScale } from "./scenarios/windows.ts";

type Result = Record<string, unknown>;

/** The scenarios in the order `all` runs them; `alone` ones run only when named. */
const SCENARIOS: { name: string; alone?: boolean; run(r: Result): Promise<Result> }[] = [
  { name: "soak", alone: true, run: async () => ({ soak: await soak() }) },
  { name: "cpu", run: async () => ({ cpu: await cpuAtFixedRate() }) },
  // The view and /top ladders are read against the bare server's: it runs before them.
  { name: "baseline", run: async () => ({ baseline: await baselineLadder() }) },
  { name: "ingest", run: (r) => ingestLadder(bestOf(r.baseline)) },
  // Alone, at BENCH_FRESH_RATE (default 1 600: 80 % of the 2 000/s the ladder reaches on this machine).
  { name: "fresh", alone: true, run: async () => ({ freshness: await freshnessAt(Number(process.env.BENCH_FRESH_RATE ?? 1600)) }) },
  { name: "batch", run: async () => ({ batch: await batchLadder() }) },
  { name: "top", run: async (r) => ({ top: await topLadder(bestOf(r.baseline)) }) },
  { name: "mixed", run: async () => ({ mixed: await mixedLadder() }) },
  { name: "keys", run: async () => ({ keys: await keyCost() }) },
  { name: "viewers", run: async () => ({ viewers: await viewerRulesCost() }) },
  { name: "windows", run: async () => ({ windows: await windowsAtScale() }) },
  // Not in "all": it grows the products table to 10 million rows for the run (removed again after it).
  { name: "top10m", alone: true, run: async () => ({ top10m: await topAtScale() }) },
];

const bestOf = (ladder: unknown) => (ladder as { best?: { rate: number } | null } | undefined)?.best?.rate ?? 0;

export async function main(what = process.argv[2] ?? "all") {
  const known = SCENARIOS.map((s) => s.name);
  if (what !== "all" && !known.includes(what)) throw new Error(`unknown scenario ${what}: all, ${known.join(", ")}`);
  mkdirSync(DATA, { recursive: true });
  mkdirSync(RESULTS, { recursive: true });
  const result: Result = { startedAt: new Date().toISOString(), machine: versions(), step: STEP };
  log(`bench ${what} — ${JSON.stringify(result.machine)}`);
  await seed();
  const baselineProc = await startBaseline();
  try {
    for (const s of SCENARIOS) {
      const needed = what === s.name || (what === "all" && !s.alone) || (s.name === "baseline" && ["ingest", "top"].includes(what));
      if (needed) Object.assign(result, await s.run(result));
    }
    for (const t of targets(result))
      log(`target ${t.met === null ? "NOT MEASURED" : t.met ? "MET   " : "MISSED"}  ${t.name}: ${t.measured} (goal ${t.goal})`);
  } finally {
    baselineProc.kill();
    result.finishedAt = new Date().toISOString();
    const file = join(RESULTS, `${RUN_STAMP}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2));
    writeFileSync(join(RESULTS, `${RUN_STAMP}.md`), `${lines.join("\n")}\n`);
    for (const [name, svg] of latencyPlots(result)) writeFileSync(join(RESULTS, `${RUN_STAMP}-${name}.svg`), svg);
    console.log(`results: ${file}`);
    await sql.end();
  }
}

if (import.meta.main) await main();
