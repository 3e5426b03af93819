// Process entry: `bun src/main.ts api|worker|setup|migrate|rebase-offsets [--apply]`. Reads the config once, wires one entry,
// and turns SIGTERM/SIGINT into a graceful stop with exit code 0.
import { ConfigError, loadConfig, type Config } from "./config.ts";

type Stoppable = { stop(): Promise<void>; fatal?: Promise<never> };

async function run(command: string, config: Config): Promise<Stoppable | null> {
  switch (command) {
    case "api":
      if (config.http.workers > 1 && !process.env.PV_API_CHILD) return (await import("./entry/cluster.ts")).start(config);
      return (await import("./entry/api.ts")).start(config);
    case "worker":
      return (await import("./entry/worker.ts")).start(config);
    case "setup":
    case "migrate":
      await (await import("./entry/setup.ts")).setup(config, { topic: command === "setup" });
      return null;
    case "rebase-offsets":
      await (await import("./entry/rebase.ts")).rebase(config, process.argv.includes("--apply"));
      return null;
    default:
      throw new Error(`unknown command ${JSON.stringify(command)}; expected api, worker, setup, migrate or rebase-offsets`);
  }
}

const command = process.argv[2] ?? "api";
let config: Config;
try {
  config = loadConfig();
} catch (e) {
  if (e instanceof ConfigError) {
    console.error(e.message);
    process.exit(2);
  }
  throw e;
}

const running = await run(command, config);
if (running) {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => {
      console.error(`${command}: graceful stop took too long after ${signal}; exiting`);
      process.exit(1);
    }, 30_000);
    force.unref();
    await running.stop();
    process.exit(0);
  };
  running.fatal?.catch(async (err) => {
    console.error(`${command}: cannot go on: ${err instanceof Error ? err.message : err}`);
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await running.stop().catch(() => {});
    process.exit(1);
  });
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}
