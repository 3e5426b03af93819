import { describe, expect, test } from "bun:test";
import { viewCounts } from "./harness/db.ts";
import { metric } from "./harness/http.ts";
import { steadyLoad, verdict } from "./harness/load.ts";
import { managedStack, spawnService, stack } from "./harness/stack.ts";
import { waitFor } from "./harness/wait.ts";

import { useFaultStack } from "./faults-stack.ts";

// Postgres stopped and killed under load (faults-stack.ts says what each checks).
describe.skipIf(!managedStack)("faults: Postgres", () => {
  const f = useFaultStack();

  test("4. Postgres stopped ~10 s: reads answer 503, the worker retries, nothing lost or doubled", async () => {
    const api = await spawnService("api", f.env);
    const worker = await spawnService("worker", f.groupEnv());
    const base = api.url;
    const before = await viewCounts(f.ctx.db, f.ids);
    const load = steadyLoad(() => base, f.ids, { paceMs: 5 });
    try {
      await Bun.sleep(2000);
      await stack("stop", "postgres");
      const readStatuses = new Set<number>();
      for (let i = 0; i < 10; i++) {
        const r = await fetch(`${base}/api/v1/products/${f.ids[1]}`);
        readStatuses.add(r.status);
        if (r.status === 503) expect(r.headers.get("retry-after")).toBe("1");
        await Bun.sleep(500);
      }
      const top = await fetch(`${base}/api/v1/products/top`);
      readStatuses.add(top.status);
      await Bun.sleep(4000);
      await stack("start", "postgres");
      const t0 = performance.now();
      await waitFor(
        "reads again",
        async () => (await fetch(`${base}/api/v1/products/${f.ids[1]}`)).status === 200 || undefined,
        60_000,
        100,
      );
      const recoveryMs = Math.round(performance.now() - t0);
      await Bun.sleep(2000);
      const s = await load.stop();
      expect([...readStatuses]).toEqual([503]);
      // Known products are accepted from the cache while Postgres is away; an uncached one gets 503, never 500.
      expect([...s.otherStatus.keys()]).toEqual([]);
      const counted = await f.exact(before, s.accepted, s.unknown);
      verdict("postgres-down-10s", {
        sent: s.sent,
        accepted: s.acceptedTotal,
        counted,
        "503s": s.unavailable,
        unknown503s: s.unknownTotal,
        readRecoveryMs: recoveryMs,
      });
      expect(worker.proc.exitCode).toBeNull();
    } finally {
      await load.stop();
      await stack("start", "postgres");
      await worker.kill("SIGTERM");
      await api.kill("SIGTERM");
      if (process.env.DEBUG_FAULTS) console.log(api.output(), worker.output());
    }
  });

  test("8. Postgres kill -9 in the middle of flushes: crash recovery, the worker's retried batch is fenced or applied once", async () => {
    await f.underLoad("postgres-kill-9", 1, async ({ workers }) => {
      const flushes = await metric(workers[0]!.url, "worker_flushes_total");
      await waitFor(
        "flushes going on",
        async () => (await metric(workers[0]!.url, "worker_flushes_total")) > flushes + 3 || undefined,
        30_000,
        20,
      );
      await stack("kill", "postgres");
      await Bun.sleep(3000);
      await stack("start", "postgres");
      return {};
    });
  });
});
