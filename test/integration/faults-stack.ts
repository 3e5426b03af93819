import { afterAll, beforeAll, expect } from "bun:test";
import { countedSince, expectExactCounts, seedProducts, viewCounts } from "./harness/db.ts";
import { steadyLoad, verdict } from "./harness/load.ts";
import { prepare, spawnService, stack, testEnv, uniqueName, type Child } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

// What the fault files share (faults-*.test.ts): reliability under faults, with a steady HTTP load running through
// each one; afterwards the accounting: the views that got 202 must equal the increase of the counts (nothing lost,
// nothing doubled). They stop and start the real Kafka broker and Postgres server that scripts/test.sh started.

export interface FaultStack {
  readonly env: Record<string, string>;
  readonly ctx: Awaited<ReturnType<typeof prepare>>;
  readonly ids: string[];
  groupEnv(): Record<string, string> & { KAFKA_GROUP_ID: string };
  /**
   * Waits for the worker(s) to apply everything, then checks product by product: every 202 counted once, no 503
   * "written: no" counted, and at most the 503s "written: unknown" counted on top.
   */
  exact(before: Map<string, number>, accepted: Map<string, number>, unknown?: Map<string, number>): Promise<number>;
  /** Each scenario's own single load: API and worker(s) as child processes, so a fault never touches the test. */
  underLoad(
    name: string,
    workers: number,
    fault: (ctl: { workers: Child[]; wEnv: Record<string, string> }) => Promise<Record<string, unknown>>,
  ): Promise<void>;
}

/** Prepared before the file's tests, and both servers left running after them whatever happened. */
export function useFaultStack(): FaultStack {
  const env = testEnv({ INGEST_TIMEOUT_MS: "3000", FLUSH_INTERVAL_MS: "100" });
  let ctx: Awaited<ReturnType<typeof prepare>>;
  let ids: string[] = [];
  beforeAll(async () => {
    ctx = await prepare(env);
    ids = await seedProducts(ctx.db, 200, "faults");
  });
  afterAll(async () => {
    await bounded("kafka start", stack("start", "kafka"), 120_000);
    await bounded("postgres start", stack("start", "postgres"), 120_000);
    await bounded("db close", ctx.db.close());
  });
  const f: FaultStack = {
    env,
    get ctx() {
      return ctx;
    },
    get ids() {
      return ids;
    },
    groupEnv: () => ({ ...env, KAFKA_GROUP_ID: uniqueName("faults") }),
    async exact(before, accepted, unknown) {
      await expectExactCounts(ctx.db, before, accepted, ids, 60_000, unknown);
      return (await countedSince(ctx.db, before, ids)).total;
    },
    underLoad,
  };
  async function underLoad(
    name: string,
    workers: number,
    fault: (ctl: { workers: Child[]; wEnv: Record<string, string> }) => Promise<Record<string, unknown>>,
  ) {
    const api = await spawnService("api", env);
    const wEnv = f.groupEnv();
    const ws: Child[] = [];
    for (let i = 0; i < workers; i++) ws.push(await spawnService("worker", wEnv));
    const before = await viewCounts(ctx.db, ids);
    const load = steadyLoad(() => api.url, ids, { paceMs: 3 });
    try {
      await waitFor("load under way", () => load.stats.acceptedTotal > 200 || undefined, 30_000, 20);
      const extra = await fault({ workers: ws, wEnv });
      // Accepted views again after the fault: the pipeline took new ones, not just survived.
      const accepted = load.stats.acceptedTotal;
      await waitFor("views accepted after the fault", () => load.stats.acceptedTotal > accepted + 200 || undefined, 90_000, 50);
      const s = await load.stop();
      expect([...s.otherStatus.keys()]).toEqual([]);
      const counted = await f.exact(before, s.accepted, s.unknown);
      verdict(name, { sent: s.sent, accepted: s.acceptedTotal, counted, "503s": s.unavailable, unknown503s: s.unknownTotal, ...extra });
    } finally {
      await load.stop();
      for (const w of ws) await bounded("worker kill", w.kill("SIGTERM"));
      await bounded("api kill", api.kill("SIGTERM"));
    }
  }

  return f;
}
