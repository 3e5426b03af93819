import { describe, expect, test } from "bun:test";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { viewCounts } from "./harness/db.ts";
import { groupAssignments } from "./harness/kafka.ts";
import { steadyLoad, verdict } from "./harness/load.ts";
import { managedStack, spawnService, stack, workerState } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

import { useFaultStack } from "./faults-stack.ts";

// Random faults on every server under load, exact at the end (faults-stack.ts says what each checks).
describe.skipIf(!managedStack)("faults: chaos", () => {
  const f = useFaultStack();

  test("11. chaos: load while random faults hit workers, Kafka and Postgres; exact at the end", async () => {
    const seconds = Number(process.env.CHAOS_SECONDS ?? 180);
    const api = await spawnService("api", f.env);
    // Workers log warnings here (flush and fetch failures, stalls, rebalances; all rate-limited): printed if the
    // counts do not add up.
    const wEnv = { ...f.groupEnv(), LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn" };
    const workers = [await spawnService("worker", wEnv), await spawnService("worker", wEnv)];
    const spawned = [...workers];
    const respawn = async (i: number) => {
      workers[i] = await spawnService("worker", wEnv);
      spawned.push(workers[i]!);
    };
    const before = await viewCounts(f.ctx.db, f.ids);
    const load = steadyLoad(() => api.url, f.ids, { paceMs: 3 });
    // The fault order and gaps come from a seeded generator: a failing run can be replayed with CHAOS_SEED.
    let seed = Number(process.env.CHAOS_SEED ?? 20261125);
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const bounce = (what: "kafka" | "postgres", how: "kill" | "stop", downMs: number) => async () => {
      await stack(how, what);
      await Bun.sleep(downMs);
      await stack("start", what);
    };
    const faults: Record<string, () => Promise<void>> = {
      "worker-kill-9": async () => {
        const i = Math.floor(rand() * workers.length);
        await workers[i]!.kill("SIGKILL");
        await Bun.sleep(500 + rand() * 2000);
        await respawn(i);
      },
      "worker-sigterm": async () => {
        const i = Math.floor(rand() * workers.length);
        await workers[i]!.kill("SIGTERM");
        await respawn(i);
      },
      "kafka-kill-9": bounce("kafka", "kill", 3000),
      "kafka-stop": bounce("kafka", "stop", 3000),
      "postgres-kill-9": bounce("postgres", "kill", 2000),
      "postgres-stop": bounce("postgres", "stop", 2000),
    };
    const names = Object.keys(faults);
    const injected: string[] = [];
    try {
      const end = performance.now() + seconds * 1000;
      while (performance.now() < end) {
        await Bun.sleep(2000 + rand() * 4000);
        const name = names[Math.floor(rand() * names.length)]!;
        const sent0 = load.stats.sent;
        const acc0 = load.stats.acceptedTotal;
        const u0 = load.stats.unavailable;
        const t0 = performance.now();
        await faults[name]!();
        injected.push(name);
        verdict(`chaos-${injected.length}-${name}`, {
          ms: Math.round(performance.now() - t0),
          sent: load.stats.sent - sent0,
          accepted: load.stats.acceptedTotal - acc0,
          "503s": load.stats.unavailable - u0,
        });
      }
      const accepted = load.stats.acceptedTotal;
      await waitFor("views accepted after the last fault", () => load.stats.acceptedTotal > accepted + 200 || undefined, 90_000, 50).catch(
        (err) => {
          // One run of eight (two suites side by side) saw the API answer nothing but 503 after chaos-10: say why.
          console.error(`chaos: the API's last log lines:\n${api.output().slice(-6000)}`);
          throw err;
        },
      );
      const s = await load.stop();
      expect([...s.otherStatus.keys()]).toEqual([]);
      const counted = await f.exact(before, s.accepted, s.unknown).catch(async (err) => {
        // Runs with two suites side by side ended short by up to 10 %: say what each worker and the group saw.
        const group = await groupAssignments(loadConfig(wEnv), wEnv.KAFKA_GROUP_ID).catch((e) => String(e));
        console.error(`chaos: the group as the broker sees it: ${JSON.stringify(group)}`);
        for (const [i, w] of workers.entries()) {
          console.error(`chaos: worker ${i} (pid ${w.proc.pid}) ${await workerState(w.url, w.output(), 60)}`);
        }
        // Every worker's whole output (librdkafka's lines too, KAFKA_DEBUG's if set), for a closer look.
        const dir = await mkdtemp(join(tmpdir(), "product-views-chaos-"));
        for (const w of spawned) await Bun.write(join(dir, `worker-${w.proc.pid}.log`), w.output());
        console.error(`chaos: the output of all ${spawned.length} workers is in ${dir}`);
        throw err;
      });
      const perKind = Object.fromEntries(names.map((n) => [n, injected.filter((x) => x === n).length]));
      verdict("chaos", {
        seconds,
        faults: injected.length,
        ...perKind,
        sent: s.sent,
        accepted: s.acceptedTotal,
        counted,
        "503s": s.unavailable,
        unknown503s: s.unknownTotal,
      });
    } finally {
      await load.stop();
      await stack("start", "kafka");
      await stack("start", "postgres");
      for (const w of workers) await bounded("worker kill", w.kill("SIGTERM"));
      await bounded("api kill", api.kill("SIGTERM"));
    }
  }, 600_000);
});
