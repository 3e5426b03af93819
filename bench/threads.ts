import { readdirSync, readFileSync } from "node:fs";

// Where a Bun process's CPU goes, by thread: the JavaScript thread (requests, JSON, the producer's JS side) against
// the native threads of librdkafka, which a `bun --cpu-prof` profile does not see at all.

/** A /proc stat file: the command name (in parentheses, may itself hold ") ") and the fields after it. */
function parseStat(path: string): { comm: string; fields: string[] } | null {
  try {
    const stat = readFileSync(path, "utf8");
    return { comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), fields: stat.slice(stat.lastIndexOf(")") + 2).split(" ") };
  } catch {
    return null;
  }
}

/** Clock ticks per second of /proc's CPU and start times (USER_HZ; 100 on Linux). */
export const CLK_TCK = 100;

/**
 * /proc/<pid>/stat fields after the command: [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime,
 * [19] starttime (ticks after boot). Null: gone.
 */
export function statOf(pid: number): string[] | null {
  return parseStat(`/proc/${pid}/stat`)?.fields ?? null;
}

/** Thread groups, by the name Linux gives each thread (/proc/<pid>/task/<tid>/comm). */
export function threadGroup(tid: number, pid: number, comm: string): string {
  if (tid === pid) return "js";
  if (comm.startsWith("rdk:")) return "librdkafka";
  if (/^(JITWorker|HeapHelper|JSCWarmUp|mi-|Heap|GC)/.test(comm)) return "jit+gc";
  return "other";
}

/** CPU ticks per thread group; `total` is the whole process, threads that already exited included. */
export function threadTicks(pid: number | null): Record<string, number> | null {
  if (!pid) return null;
  const out: Record<string, number> = {};
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  for (const name of tids) {
    const tid = Number(name);
    const t = parseStat(`/proc/${pid}/task/${tid}/stat`);
    // null: the thread exited between the listing and the read; its ticks are in the process total
    if (!t) continue;
    const group = threadGroup(tid, pid, t.comm);
    out[group] = (out[group] ?? 0) + Number(t.fields[11]) + Number(t.fields[12]);
  }
  const p = statOf(pid);
  if (!p) return null;
  out.total = Number(p[11]) + Number(p[12]);
  return out;
}

/**
 * µs of CPU per view of each group between two samples. A thread that started and ended between them (a
 * short-lived worker thread) is only in the process total: it shows as `exited`.
 */
export function threadsPerView(a: Record<string, number> | null, b: Record<string, number> | null, views: number): Record<string, number> {
  if (!a || !b || views <= 0) return {};
  const us = (ticks: number) => Math.round(((ticks / CLK_TCK) * 1e6) / views);
  const out: Record<string, number> = {};
  let groups = 0;
  for (const k of Object.keys(b)) {
    if (k === "total") continue;
    const d = Math.max(0, b[k]! - (a[k] ?? 0));
    groups += d;
    out[k] = us(d);
  }
  const total = b.total! - (a.total ?? 0);
  out.exited = us(Math.max(0, total - groups));
  out.total = us(total);
  return out;
}
