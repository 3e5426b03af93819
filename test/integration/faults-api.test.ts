import { describe, expect, test } from "bun:test";
import { start as startWorker } from "../../src/entry/worker.ts";
import { loadConfig } from "../../src/config.ts";
import { countedSince, viewCounts } from "./harness/db.ts";
import { post } from "./harness/http.ts";
import { steadyLoad, verdict } from "./harness/load.ts";
import { managedStack, spawnService, type Child } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

import { useFaultStack } from "./faults-stack.ts";

// The API stopped and killed during a burst (faults-stack.ts says what each checks).
describe.skipIf(!managedStack)("faults: the API", () => {
  const f = useFaultStack();

  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    test(`${signal === "SIGTERM" ? 5 : 6}. ${signal} to the API during a burst: every view that got 202 is counted`, async () => {
      const worker = await startWorker(loadConfig(f.groupEnv()));
      let api: Child = await spawnService("api", f.env);
      const before = await viewCounts(f.ctx.db, f.ids);
      const load = steadyLoad(() => api.url, f.ids, { concurrency: 32 });
      try {
        await waitFor("burst under way", () => load.stats.acceptedTotal > 500 || undefined, 30_000, 5);
        const code = await api.kill(signal);
        if (signal === "SIGTERM") expect(code).toBe(0);
        const s = await load.stop();
        expect(s.otherStatus.size).toBe(0);
        await Bun.sleep(1000);
        if (signal === "SIGTERM") {
          // Graceful: in-flight requests finished and their events were confirmed; nothing else was produced.
          const counted = await f.exact(before, s.accepted, s.unknown);
          verdict("sigterm-api-burst", {
            sent: s.sent,
            accepted: s.acceptedTotal,
            counted,
            "503s": s.unavailable,
            refused: s.connectionErrors,
          });
        } else {
          // Killed: requests cut mid-way may have produced an event without a 202 reaching the client, so the
          // counts may exceed the 202s, never fall below them.
          await waitFor(
            "all accepted views counted",
            async () => {
              const c = await countedSince(f.ctx.db, before, f.ids);
              return [...s.accepted].every(([id, n]) => (c.per.get(id) ?? 0) >= n) || undefined;
            },
            60_000,
            200,
          );
          const counted = (await countedSince(f.ctx.db, before, f.ids)).total;
          expect(counted).toBeGreaterThanOrEqual(s.acceptedTotal);
          verdict("kill-9-api-burst", {
            sent: s.sent,
            accepted: s.acceptedTotal,
            counted,
            unanswered: counted - s.acceptedTotal,
            "503s": s.unavailable,
            cut: s.connectionErrors,
          });
        }
        api = await spawnService("api", f.env);
        expect((await post(`${api.url}/api/v1/products/view`, { product_id: f.ids[0] })).status).toBe(202);
      } finally {
        await load.stop();
        await api.kill("SIGTERM");
        await bounded("worker.stop", worker.stop());
      }
    });
  }
});
