import type { Config } from "../config.ts";
import { createLogger } from "../log.ts";

// API_WORKERS=N: N API processes share the port (SO_REUSEPORT); the kernel spreads connections.
// Each child is a full API with its own producer; this parent only supervises and forwards signals.

/** A child that dies young is restarted later and later (a crash loop must not burn the CPU); one that ran a while starts over. */
export function nextRestartDelay(previousMs: number, ranMs: number): number {
  if (ranMs >= 30_000) return 100;
  return Math.min(Math.max(previousMs * 2, 100), 30_000);
}

export async function start(config: Config) {
  const log = createLogger(config.logLevel, "api-cluster");
  let stopping = false;
  const delays: number[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const spawnOne = (i: number): ReturnType<typeof Bun.spawn> => {
    const startedAt = performance.now();
    return Bun.spawn([process.execPath, `${import.meta.dir}/../main.ts`, "api"], {
      env: { ...process.env, PV_API_CHILD: String(i) },
      stdio: ["ignore", "inherit", "inherit"],
      onExit(_p, code) {
        if (stopping) return;
        const delay = nextRestartDelay(delays[i] ?? 0, performance.now() - startedAt);
        delays[i] = delay;
        log.error({ child: i, code, restartInMs: delay }, "api child exited; restarting");
        const t = setTimeout(() => {
          timers.delete(t);
          if (!stopping) children[i] = spawnOne(i);
        }, delay);
        timers.add(t);
      },
    });
  };
  const children = Array.from({ length: config.http.workers }, (_, i) => spawnOne(i));
  log.info({ workers: children.length, port: config.http.port }, "api cluster started");
  return {
    async stop() {
      stopping = true;
      for (const t of timers) clearTimeout(t);
      for (const c of children) c.kill("SIGTERM");
      await Promise.all(children.map((c) => c.exited));
    },
  };
}
