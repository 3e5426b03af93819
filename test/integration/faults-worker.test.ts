import { describe, expect, test } from "bun:test";
import { start as startApi } from "../../src/entry/api.ts";
import { viewCounts } from "./harness/db.ts";
import { steadyLoad, verdict } from "./harness/load.ts";
import { managedStack, spawnService, type Child } from "./harness/stack.ts";
import { bounded } from "./harness/wait.ts";

import { useFaultStack } from "./faults-stack.ts";

// Workers killed under load: one, one of two, twenty times in a row (faults-stack.ts says what each checks).
describe.skipIf(!managedStack)("faults: the worker", () => {
  const f = useFaultStack();

  test("1. kill -9 the worker, restart it a few seconds later", async () => {
    const api = await startApi(f.ctx.config);
    const wEnv = f.groupEnv();
    let worker: Child = await spawnService("worker", wEnv);
    const before = await viewCounts(f.ctx.db, f.ids);
    const load = steadyLoad(() => `http://127.0.0.1:${api.port}`, f.ids, { paceMs: 2 });
    try {
      await Bun.sleep(2000);
      await worker.kill("SIGKILL");
      await Bun.sleep(3000);
      const t0 = performance.now();
      worker = await spawnService("worker", wEnv);
      await Bun.sleep(2000);
      const s = await load.stop();
      const counted = await f.exact(before, s.accepted, s.unknown);
      verdict("kill-9-worker", {
        sent: s.sent,
        accepted: s.acceptedTotal,
        counted,
        "503s": s.unavailable,
        restartMs: Math.round(performance.now() - t0),
      });
      expect(s.otherStatus.size).toBe(0);
    } finally {
      await load.stop();
      await worker.kill("SIGTERM");
      await bounded("api.stop", api.stop());
    }
  });

  test("2. two workers, kill -9 one, start it again later (two rebalances)", async () => {
    const api = await startApi(f.ctx.config);
    const wEnv = f.groupEnv();
    let a: Child = await spawnService("worker", wEnv);
    const b = await spawnService("worker", wEnv);
    const before = await viewCounts(f.ctx.db, f.ids);
    const load = steadyLoad(() => `http://127.0.0.1:${api.port}`, f.ids, { paceMs: 2 });
    try {
      await Bun.sleep(2000);
      await a.kill("SIGKILL");
      await Bun.sleep(4000);
      a = await spawnService("worker", wEnv);
      await Bun.sleep(4000);
      const s = await load.stop();
      const counted = await f.exact(before, s.accepted, s.unknown);
      verdict("two-workers-kill-restart", { sent: s.sent, accepted: s.acceptedTotal, counted, "503s": s.unavailable });
      expect(s.otherStatus.size).toBe(0);
    } finally {
      await load.stop();
      await a.kill("SIGTERM");
      await b.kill("SIGTERM");
      await bounded("api.stop", api.stop());
    }
  });

  test("9. the worker killed with -9 twenty times in a row at varied moments: exact", async () => {
    await f.underLoad("worker-kill-9-x20", 1, async ({ workers, wEnv }) => {
      // Varied but not random: the kill moments sweep 0..1.9 s after each start (deterministic schedule).
      for (let i = 0; i < 20; i++) {
        await Bun.sleep((i * 97) % 1900);
        await workers[0]!.kill("SIGKILL");
        workers[0] = await spawnService("worker", wEnv);
      }
      return { kills: 20 };
    });
  });
});
