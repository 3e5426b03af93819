// Process entry: `bun src/main.ts api|worker|setup|migrate`. Reads the config once, wires one entry,
// and turns SIGTERM/SIGINT into a graceful stop with exit code 0.
import { ConfigError, loadConfig, type Config } from "./config.ts";

type Stoppable = { stop(): Promise<void> };

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
    default:
      throw new Error(`unknown command ${JSON.stringify(command)}; expected api, worker, setup or migrate`);
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
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}
