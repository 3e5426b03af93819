import type { Registry } from "./metrics.ts";

// The process itself, in every /metrics: memory, CPU, how late the event loop runs timers, and the JS heap.
// Names follow Prometheus' client conventions (process_*, nodejs-style eventloop lag), so stock dashboards work.

/** Registers the process gauges; the returned stop() ends the event-loop probe (it never keeps a process alive). */
export function registerProcessMetrics(metrics: Registry): { stop(): void } {
  metrics.gauge("process_resident_memory_bytes", "Resident set size", () => process.memoryUsage.rss());
  metrics.gauge("process_cpu_seconds_total", "User and system CPU time spent", () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  // From the engine's counters (process.memoryUsage), never by walking the heap (bun:jsc's heapStats() walks every
  // object), since a scrape runs on the event loop every request waits on.
  metrics.gauge("process_heap_bytes", "JavaScript heap in use (JavaScriptCore)", () => process.memoryUsage().heapUsed);

  // A timer due every 100 ms: how late it fires is how long the loop was busy (CPU-bound work, long GC pauses).
  // The gauge reports the worst delay since the previous scrape, so a short stall between scrapes still shows.
  const every = 100;
  let due = performance.now() + every;
  let worst = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - due);
    due = now + every;
  }, every);
  probe.unref();
  metrics.gauge("eventloop_lag_max_seconds", "Longest event-loop delay since the previous scrape", () => {
    const w = worst;
    worst = 0;
    return Math.max(0, w) / 1000;
  });
  return { stop: () => clearInterval(probe) };
}
