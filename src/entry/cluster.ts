import type { Config } from "../config.ts";
import { createLogger } from "../log.ts";

// API_WORKERS=N: N API processes share the port (SO_REUSEPORT); the kernel spreads connections.
// Each child is a full API with its own producer; this parent only supervises and forwards signals.
export async function start(config: Config) {
  const log = createLogger(config.logLevel, "api-cluster");
  let stopping = false;
  const spawnOne = (i: number): ReturnType<typeof Bun.spawn> =>
    Bun.spawn([process.execPath, import.meta.dir + "/../main.ts", "api"], {
      env: { ...process.env, PV_API_CHILD: String(i) },
      stdio: ["ignore", "inherit", "inherit"],
      onExit(_p, code) {
        if (stopping) return;
        log.error({ child: i, code }, "api child exited; restarting");
        children[i] = spawnOne(i);
      },
    });
  const children = Array.from({ length: config.http.workers }, (_, i) => spawnOne(i));
  log.info({ workers: children.length, port: config.http.port }, "api cluster started");
  return {
    async stop() {
      stopping = true;
      for (const c of children) c.kill("SIGTERM");
      await Promise.all(children.map((c) => c.exited));
    },
  };
}
