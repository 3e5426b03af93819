import { log } from "../lib/log.ts";
import { ingestStep } from "../lib/steps.ts";

/** SOAK_MINUTES (10) at SOAK_RATE (2 000/s): the API's and the worker's RSS must stay flat (first against last minute). */
export async function soak() {
  const rate = Number(process.env.SOAK_RATE ?? 2000);
  const minutes = Number(process.env.SOAK_MINUTES ?? 10);
  const r = await ingestStep("view", rate, `${minutes * 60}s`);
  const first = (s: number[]) => Math.max(...s.slice(0, 120));
  const last = (s: number[]) => Math.max(...s.slice(-120));
  const flat = (k: "api" | "worker") => {
    const s = r.processes[k]?.rssSeries ?? [];
    return {
      firstMinutePeakMB: first(s),
      lastMinutePeakMB: last(s),
      growthPct: Number((((last(s) - first(s)) / first(s)) * 100).toFixed(1)),
    };
  };
  log(`soak: api ${JSON.stringify(flat("api"))} worker ${JSON.stringify(flat("worker"))}`);
  return { ...r, rss: { api: flat("api"), worker: flat("worker") } };
}
