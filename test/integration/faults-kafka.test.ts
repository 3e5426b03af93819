import { describe, expect, test } from "bun:test";
import { start as startApi } from "../../src/entry/api.ts";
import { start as startWorker } from "../../src/entry/worker.ts";
import { loadConfig } from "../../src/config.ts";
import { viewCounts } from "./harness/db.ts";
import { metric, post } from "./harness/http.ts";
import { steadyLoad, verdict } from "./harness/load.ts";
import { managedStack, prepare, runMain, spawnService, stack, workerState } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

import { useFaultStack } from "./faults-stack.ts";

// Kafka stopped, killed, and its data wiped under load (faults-stack.ts says what each checks).
describe.skipIf(!managedStack)("faults: Kafka", () => {
  const f = useFaultStack();

  test("3. Kafka stopped ~10 s: the API answers 503 (never 500, never past its deadline), both sides recover alone", async () => {
    const api = await startApi(f.ctx.config);
    const worker = await startWorker(loadConfig(f.groupEnv()));
    const base = `http://127.0.0.1:${api.port}`;
    const before = await viewCounts(f.ctx.db, f.ids);
    const load = steadyLoad(() => base, f.ids, { paceMs: 5 });
    try {
      await Bun.sleep(2000);
      await stack("stop", "kafka");
      await Bun.sleep(10_000);
      const during = { ...load.stats, ready: (await fetch(`${base}/ready`)).status };
      await stack("start", "kafka");
      const t0 = performance.now();
      const unavailableAtRestart = load.stats.unavailable;
      await waitFor(
        "202s again",
        () => (load.stats.acceptedTotal > 0 && load.stats.unavailable === unavailableAtRestart) || undefined,
        60_000,
        100,
      ).catch(() => {});
      await waitFor(
        "views accepted after the restart",
        async () => (await post(`${base}/api/v1/products/view`, { product_id: f.ids[0] })).status === 202 || undefined,
        60_000,
        200,
      );
      const recoveryMs = Math.round(performance.now() - t0);
      await Bun.sleep(2000);
      const s = await load.stop();
      // The probe view above got 202 too.
      s.accepted.set(f.ids[0]!, (s.accepted.get(f.ids[0]!) ?? 0) + 1);
      s.acceptedTotal++;
      expect(during.ready).toBe(503);
      expect(s.unavailable).toBeGreaterThan(0);
      expect(s.otherStatus.size).toBe(0);
      // No request hangs: every one is answered around INGEST_TIMEOUT_MS=3000. A liveness bound, not a
      // latency claim: the slack is wide enough for a CPU hog beside the test.
      expect(s.maxLatencyMs).toBeLessThan(3000 + 5000);
      const counted = await f.exact(before, s.accepted, s.unknown).catch(async (err) => {
        // The worker logs only errors here: say what its consume loop saw of the restart.
        console.error(`worker ${await workerState(`http://127.0.0.1:${worker.port}`)}`);
        throw err;
      });
      verdict("kafka-down-10s", {
        sent: s.sent,
        accepted: s.acceptedTotal,
        counted,
        "503s": s.unavailable,
        unknown503s: s.unknownTotal,
        maxLatencyMs: Math.round(s.maxLatencyMs),
        recoveryMs,
        // Partitions that sat still after the restart, by the worker's response (seek / replace / wait).
        stalls:
          (await (await fetch(`http://127.0.0.1:${worker.port}/metrics`)).text())
            .split("\n")
            .filter((l) => l.startsWith("worker_stalls_total{"))
            .map((l) => l.replace(/^worker_stalls_total\{response="(\w+)"\} /, "$1:"))
            .join(",") || "none",
      });
    } finally {
      await load.stop();
      await stack("start", "kafka");
      await bounded("worker.stop", worker.stop());
      await bounded("api.stop", api.stop());
    }
  });

  test("7. Kafka kill -9 under load, restarted 5 s later: every 202 counted once", async () => {
    await f.underLoad("kafka-kill-9", 1, async () => {
      await stack("kill", "kafka");
      await Bun.sleep(5000);
      const t0 = performance.now();
      await stack("start", "kafka");
      return { restartMs: Math.round(performance.now() - t0) };
    });
  });

  test("10. Kafka's data wiped and the topic recreated while Postgres keeps its offsets: held and reported, then re-based", async () => {
    const api = await spawnService("api", f.env);
    const wEnv = f.groupEnv();
    const worker = await spawnService("worker", wEnv);
    const before = await viewCounts(f.ctx.db, f.ids);
    let load = steadyLoad(() => api.url, f.ids, { paceMs: 3 });
    try {
      await waitFor("load under way", () => load.stats.acceptedTotal > 500 || undefined, 30_000, 20);
      const first = await load.stop();
      // Everything accepted before the wipe is counted first: a wipe destroys what the worker has not read.
      await f.exact(before, first.accepted, first.unknown);
      await stack("wipe", "kafka");
      await stack("start", "kafka");
      await prepare(f.env); // the operator's `bun src/main.ts setup`: the topic again, empty, offsets from 0
      load = steadyLoad(() => api.url, f.ids, { paceMs: 3 });
      await waitFor("views accepted into the new topic", () => load.stats.acceptedTotal > 300 || undefined, 90_000, 50);
      const second = await load.stop();
      const mid = await viewCounts(f.ctx.db, f.ids);
      await waitFor("reset detected", async () => (await fetch(`${worker.url}/ready`)).status === 503 || undefined, 60_000, 200);
      const held = await metric(worker.url, "worker_held_partitions");
      expect(held).toBeGreaterThan(0);
      expect(worker.output()).toContain("stored offsets belong to another topic id");
      // Nothing of the new topic was skipped as "already counted" meanwhile, nor counted.
      expect(await viewCounts(f.ctx.db, f.ids)).toEqual(mid);
      const rebased = await runMain(f.env, "rebase-offsets", "--apply");
      expect(rebased.code).toBe(0);
      const sum = (a: Map<string, number>, b: Map<string, number>) => new Map(f.ids.map((id) => [id, (a.get(id) ?? 0) + (b.get(id) ?? 0)]));
      const counted = await f.exact(before, sum(first.accepted, second.accepted), sum(first.unknown, second.unknown));
      await waitFor("worker ready again", async () => (await fetch(`${worker.url}/ready`)).status === 200 || undefined, 30_000, 200);
      verdict("kafka-wiped-topic-recreated", {
        acceptedBefore: first.acceptedTotal,
        acceptedAfter: second.acceptedTotal,
        counted,
        heldPartitions: held,
        rebase: rebased.out.trim().split("\n").length,
      });
    } finally {
      await load.stop();
      await bounded("worker kill", worker.kill("SIGTERM"));
      await bounded("api kill", api.kill("SIGTERM"));
      if (process.env.DEBUG_FAULTS) console.log(worker.output());
    }
    // Its budget: it wipes Kafka, restarts it, recreates the topic and restarts the worker twice. Runs took 30-100 s,
    // 96-99 s beside another suite with a CPU hog, and one such run ran past bun's default 120 s.
  }, 300_000);
});
