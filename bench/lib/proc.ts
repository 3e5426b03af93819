// The services' processes as /proc shows them: pids, RSS and CPU of each process tree, sampled during a step.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CLK_TCK, statOf } from "../threads.ts";
import { STACK_DATA } from "./env.ts";

/** A service's pid, from the stack's pid file (scripts/stack.sh). */
export function pidOf(name: string): number | null {
  try {
    return Number(readFileSync(join(STACK_DATA, "run", `${name}.pid`), "utf8"));
  } catch {
    return null;
  }
}

export interface ProcSample {
  rssMB: number;
  cpuTicks: number;
}

/**
 * CPU ticks of a process and all its descendants: its own, those of children it reaped (cutime/cstime: Postgres
 * backends that exited), and those of the live ones. Differences of two samples are the tree's CPU between them.
 */
export function treeTicks(root: number): number {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const st = statOf(pid);
    if (st) (children.get(Number(st[1])) ?? children.set(Number(st[1]), []).get(Number(st[1]))!).push(pid);
  }
  let ticks = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    const st = statOf(pid);
    if (st) ticks += Number(st[11]) + Number(st[12]) + Number(st[13]) + Number(st[14]);
    stack.push(...(children.get(pid) ?? []));
  }
  return ticks;
}

export function sampleProc(pid: number | null): ProcSample | null {
  if (!pid) return null;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    return { rssMB: rss, cpuTicks: treeTicks(pid) };
  } catch {
    return null;
  }
}

/** The postmaster's pid (first line of postmaster.pid in the stack's data folder). */
export function postgresPid(): number | null {
  try {
    return Number(readFileSync(join(STACK_DATA, "pg", "postmaster.pid"), "utf8").split("\n")[0]);
  } catch {
    return null;
  }
}

/** CPU time per accepted view, in microseconds, for each monitored process tree. */
export function cpuPerView(processes: Record<string, { cpuSeconds: number }>, views: number): Record<string, number> {
  const out: Record<string, number> = {};
  let total = 0;
  for (const [k, p] of Object.entries(processes)) {
    out[k] = views > 0 ? Math.round((p.cpuSeconds / views) * 1e6) : 0;
    total += out[k]!;
  }
  out.total = total;
  return out;
}

/** Samples RSS and CPU of the named processes every 500 ms until stopped. */
export function monitor(pids: Record<string, number | null>) {
  const peak: Record<string, number> = {};
  const series: Record<string, number[]> = {};
  const first: Record<string, ProcSample | null> = {};
  const t0 = performance.now();
  for (const [k, pid] of Object.entries(pids)) first[k] = sampleProc(pid);
  const timer = setInterval(() => {
    for (const [k, pid] of Object.entries(pids)) {
      const s = sampleProc(pid);
      if (!s) continue;
      peak[k] = Math.max(peak[k] ?? 0, s.rssMB);
      series[k] ??= [];
      series[k].push(Math.round(s.rssMB));
    }
  }, 500);
  return () => {
    clearInterval(timer);
    const secs = (performance.now() - t0) / 1000;
    const out: Record<string, { peakRssMB: number; cpuCores: number; cpuSeconds: number; rssSeries: number[] }> = {};
    for (const [k, pid] of Object.entries(pids)) {
      const a = first[k];
      const b = sampleProc(pid);
      out[k] = {
        peakRssMB: Math.round(peak[k] ?? b?.rssMB ?? 0),
        cpuCores: a && b ? Number(((b.cpuTicks - a.cpuTicks) / CLK_TCK / secs).toFixed(2)) : 0,
        cpuSeconds: a && b ? (b.cpuTicks - a.cpuTicks) / CLK_TCK : 0,
        rssSeries: series[k] ?? [],
      };
    }
    return out;
  };
}

/** Seconds since the process started (its stat starttime against /proc/uptime). */
export function processAgeS(pid: number | null): number | null {
  const st = pid === null ? null : statOf(pid);
  if (!st) return null;
  const uptime = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
  return Math.round(uptime - Number(st[19]) / CLK_TCK);
}
