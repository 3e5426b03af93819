import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { start as startApi } from "../../src/entry/api.ts";
import { start as startWorker } from "../../src/entry/worker.ts";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import {
  bounded,
  countedSince,
  expectExactCounts,
  groupAssignments,
  managedStack,
  metric,
  post,
  prepare,
  runMain,
  seedProducts,
  spawnService,
  stack,
  steadyLoad,
  testEnv,
  uniqueName,
  verdict,
  viewCounts,
  waitFor,
  workerState,
  type Child,
} from "./harness.ts";

// Reliability under faults, with a steady HTTP load running through each one; afterwards the accounting:
// the views that got 202 must equal the increase of the counts (nothing lost, nothing doubled).
// These stop and start the real Kafka broker and Postgres server that scripts/test.sh started.
describe.skipIf(!managedStack)("faults under steady load", () => {
  const env = testEnv({ INGEST_TIMEOUT_MS: "3000", FLUSH_INTERVAL_MS: "100" });
  const groupEnv = () => ({ ...env, KAFKA_GROUP_ID: uniqueName("faults") });
  let ctx: Awaited<ReturnType<typeof prepare>>;
  let ids: string[];

  beforeAll(async () => {
    ctx = await prepare(env);
    ids = await seedProducts(ctx.db, 200, "faults");
  });
  afterAll(async () => {
    // Whatever happened, leave both servers running for the tests after these.
    await bounded("kafka start", stack("start", "kafka"), 120_000);
    await bounded("postgres start", stack("start", "postgres"), 120_000);
    await bounded("db close", ctx.db.close());
  });

  /**
   * Waits for the worker(s) to apply everything, then checks product by product: every 202 counted once, no
   * 503 "written: no" counted, and at most the 503s "written: unknown" counted on top.
   */
  async function exact(before: Map<string, number>, accepted: Map<string, number>, unknown?: Map<string, number>) {
    await expectExactCounts(ctx.db, before, accepted, ids, 60_000, unknown);
    return (await countedSince(ctx.db, before, ids)).total;
  }

  test("1. kill -9 the worker, restart it a few seconds later", async () => {
    const api = await startApi(ctx.config);
    const wEnv = groupEnv();
    let worker: Child = await spawnService("worker", wEnv);
    const before = await viewCounts(ctx.db, ids);
    const load = steadyLoad(() => `http://127.0.0.1:${api.port}`, ids, { paceMs: 2 });
    try {
      await Bun.sleep(2000);
      await worker.kill("SIGKILL");
      await Bun.sleep(3000);
      const t0 = performance.now();
      worker = await spawnService("worker", wEnv);
      await Bun.sleep(2000);
      const s = await load.stop();
      const counted = await exact(before, s.accepted, s.unknown);
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
    const api = await startApi(ctx.config);
    const wEnv = groupEnv();
    let a: Child = await spawnService("worker", wEnv);
    const b = await spawnService("worker", wEnv);
    const before = await viewCounts(ctx.db, ids);
    const load = steadyLoad(() => `http://127.0.0.1:${api.port}`, ids, { paceMs: 2 });
    try {
      await Bun.sleep(2000);
      await a.kill("SIGKILL");
      await Bun.sleep(4000);
      a = await spawnService("worker", wEnv);
      await Bun.sleep(4000);
      const s = await load.stop();
      const counted = await exact(before, s.accepted, s.unknown);
      verdict("two-workers-kill-restart", { sent: s.sent, accepted: s.acceptedTotal, counted, "503s": s.unavailable });
      expect(s.otherStatus.size).toBe(0);
    } finally {
      await load.stop();
      await a.kill("SIGTERM");
      await b.kill("SIGTERM");
      await bounded("api.stop", api.stop());
    }
  });

  test("3. Kafka stopped ~10 s: the API answers 503 (never 500, never past its deadline), both sides recover alone", async () => {
    const api = await startApi(ctx.config);
    const worker = await startWorker(loadConfig(groupEnv()));
    const base = `http://127.0.0.1:${api.port}`;
    const before = await viewCounts(ctx.db, ids);
    const load = steadyLoad(() => base, ids, { paceMs: 5 });
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
        async () => (await post(`${base}/api/v1/products/view`, { product_id: ids[0] })).status === 202 || undefined,
        60_000,
        200,
      );
      const recoveryMs = Math.round(performance.now() - t0);
      await Bun.sleep(2000);
      const s = await load.stop();
      // The probe view above got 202 too.
      s.accepted.set(ids[0]!, (s.accepted.get(ids[0]!) ?? 0) + 1);
      s.acceptedTotal++;
      expect(during.ready).toBe(503);
      expect(s.unavailable).toBeGreaterThan(0);
      expect(s.otherStatus.size).toBe(0);
      // No request hangs: every one is answered around INGEST_TIMEOUT_MS=3000. A liveness bound, not a
      // latency claim: the slack is wide enough for a CPU hog beside the test.
      expect(s.maxLatencyMs).toBeLessThan(3000 + 5000);
      const counted = await exact(before, s.accepted, s.unknown).catch(async (err) => {
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

  test("4. Postgres stopped ~10 s: reads answer 503, the worker retries, nothing lost or doubled", async () => {
    const api = await spawnService("api", env);
    const worker = await spawnService("worker", groupEnv());
    const base = api.url;
    const before = await viewCounts(ctx.db, ids);
    const load = steadyLoad(() => base, ids, { paceMs: 5 });
    try {
      await Bun.sleep(2000);
      await stack("stop", "postgres");
      const readStatuses = new Set<number>();
      for (let i = 0; i < 10; i++) {
        const r = await fetch(`${base}/api/v1/products/${ids[1]}`);
        readStatuses.add(r.status);
        if (r.status === 503) expect(r.headers.get("retry-after")).toBe("1");
        await Bun.sleep(500);
      }
      const top = await fetch(`${base}/api/v1/products/top`);
      readStatuses.add(top.status);
      await Bun.sleep(4000);
      await stack("start", "postgres");
      const t0 = performance.now();
      await waitFor("reads again", async () => (await fetch(`${base}/api/v1/products/${ids[1]}`)).status === 200 || undefined, 60_000, 100);
      const recoveryMs = Math.round(performance.now() - t0);
      await Bun.sleep(2000);
      const s = await load.stop();
      expect([...readStatuses]).toEqual([503]);
      // Known products are accepted from the cache while Postgres is away; an uncached one gets 503, never 500.
      expect([...s.otherStatus.keys()]).toEqual([]);
      const counted = await exact(before, s.accepted, s.unknown);
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

  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    test(`${signal === "SIGTERM" ? 5 : 6}. ${signal} to the API during a burst: every view that got 202 is counted`, async () => {
      const worker = await startWorker(loadConfig(groupEnv()));
      let api: Child = await spawnService("api", env);
      const before = await viewCounts(ctx.db, ids);
      const load = steadyLoad(() => api.url, ids, { concurrency: 32 });
      try {
        await waitFor("burst under way", () => load.stats.acceptedTotal > 500 || undefined, 30_000, 5);
        const code = await api.kill(signal);
        if (signal === "SIGTERM") expect(code).toBe(0);
        const s = await load.stop();
        expect(s.otherStatus.size).toBe(0);
        await Bun.sleep(1000);
        if (signal === "SIGTERM") {
          // Graceful: in-flight requests finished and their events were confirmed; nothing else was produced.
          const counted = await exact(before, s.accepted, s.unknown);
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
              const c = await countedSince(ctx.db, before, ids);
              return [...s.accepted].every(([id, n]) => (c.per.get(id) ?? 0) >= n) || undefined;
            },
            60_000,
            200,
          );
          const counted = (await countedSince(ctx.db, before, ids)).total;
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
        api = await spawnService("api", env);
        expect((await post(`${api.url}/api/v1/products/view`, { product_id: ids[0] })).status).toBe(202);
      } finally {
        await load.stop();
        await api.kill("SIGTERM");
        await bounded("worker.stop", worker.stop());
      }
    });
  }
  /** Each scenario's own single load: API and worker(s) as child processes, so a fault never touches the test. */
  async function underLoad(
    name: string,
    workers: number,
    fault: (ctl: { workers: Child[]; wEnv: Record<string, string> }) => Promise<Record<string, unknown>>,
  ) {
    const api = await spawnService("api", env);
    const wEnv = groupEnv();
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
      const counted = await exact(before, s.accepted, s.unknown);
      verdict(name, { sent: s.sent, accepted: s.acceptedTotal, counted, "503s": s.unavailable, unknown503s: s.unknownTotal, ...extra });
    } finally {
      await load.stop();
      for (const w of ws) await bounded("worker kill", w.kill("SIGTERM"));
      await bounded("api kill", api.kill("SIGTERM"));
    }
  }

  test("7. Kafka kill -9 under load, restarted 5 s later: every 202 counted once", async () => {
    await underLoad("kafka-kill-9", 1, async () => {
      await stack("kill", "kafka");
      await Bun.sleep(5000);
      const t0 = performance.now();
      await stack("start", "kafka");
      return { restartMs: Math.round(performance.now() - t0) };
    });
  });

  test("8. Postgres kill -9 in the middle of flushes: crash recovery, the worker's retried batch is fenced or applied once", async () => {
    await underLoad("postgres-kill-9", 1, async ({ workers }) => {
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

  test("9. the worker killed with -9 twenty times in a row at varied moments: exact", async () => {
    await underLoad("worker-kill-9-x20", 1, async ({ workers, wEnv }) => {
      // Varied but not random: the kill moments sweep 0..1.9 s after each start (deterministic schedule).
      for (let i = 0; i < 20; i++) {
        await Bun.sleep((i * 97) % 1900);
        await workers[0]!.kill("SIGKILL");
        workers[0] = await spawnService("worker", wEnv);
      }
      return { kills: 20 };
    });
  });

  test("10. Kafka's data wiped and the topic recreated while Postgres keeps its offsets: held and reported, then re-based", async () => {
    const api = await spawnService("api", env);
    const wEnv = groupEnv();
    const worker = await spawnService("worker", wEnv);
    const before = await viewCounts(ctx.db, ids);
    let load = steadyLoad(() => api.url, ids, { paceMs: 3 });
    try {
      await waitFor("load under way", () => load.stats.acceptedTotal > 500 || undefined, 30_000, 20);
      const first = await load.stop();
      // Everything accepted before the wipe is counted first: a wipe destroys what the worker has not read.
      await exact(before, first.accepted, first.unknown);
      await stack("wipe", "kafka");
      await stack("start", "kafka");
      await prepare(env); // the operator's `bun src/main.ts setup`: the topic again, empty, offsets from 0
      load = steadyLoad(() => api.url, ids, { paceMs: 3 });
      await waitFor("views accepted into the new topic", () => load.stats.acceptedTotal > 300 || undefined, 90_000, 50);
      const second = await load.stop();
      const mid = await viewCounts(ctx.db, ids);
      await waitFor("reset detected", async () => (await fetch(`${worker.url}/ready`)).status === 503 || undefined, 60_000, 200);
      const held = await metric(worker.url, "worker_held_partitions");
      expect(held).toBeGreaterThan(0);
      expect(worker.output()).toContain("stored offsets belong to another topic id");
      // Nothing of the new topic was skipped as "already counted" meanwhile, nor counted.
      expect(await viewCounts(ctx.db, ids)).toEqual(mid);
      const rebased = await runMain(env, "rebase-offsets", "--apply");
      expect(rebased.code).toBe(0);
      const sum = (a: Map<string, number>, b: Map<string, number>) => new Map(ids.map((id) => [id, (a.get(id) ?? 0) + (b.get(id) ?? 0)]));
      const counted = await exact(before, sum(first.accepted, second.accepted), sum(first.unknown, second.unknown));
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

  test("11. chaos: load while random faults hit workers, Kafka and Postgres; exact at the end", async () => {
    const seconds = Number(process.env.CHAOS_SECONDS ?? 180);
    const api = await spawnService("api", env);
    // Workers log warnings here (flush and fetch failures, stalls, rebalances; all rate-limited): printed if the
    // counts do not add up.
    const wEnv = { ...groupEnv(), LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn" };
    const workers = [await spawnService("worker", wEnv), await spawnService("worker", wEnv)];
    const spawned = [...workers];
    const respawn = async (i: number) => {
      workers[i] = await spawnService("worker", wEnv);
      spawned.push(workers[i]!);
    };
    const before = await viewCounts(ctx.db, ids);
    const load = steadyLoad(() => api.url, ids, { paceMs: 3 });
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
      const counted = await exact(before, s.accepted, s.unknown).catch(async (err) => {
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

describe("top-N freshness", () => {
  test("a flush refreshes GET /top through NOTIFY, from the counts it carries or by reading only the products it names, with no periodic refresh due", async () => {
    // TOP_REFRESH_MS=60000: only the worker's NOTIFY can make the new leader appear within the wait below.
    const env = testEnv({ TOP_REFRESH_MS: "60000", TOP_FULL_REFRESH_MS: "600000", FLUSH_INTERVAL_MS: "100" });
    // Each step bounded and named: after the chaos run a step that never returns must say which it was.
    const { config, db } = await bounded("prepare", prepare(env), 60_000);
    const [id] = await bounded("seed", seedProducts(db, 1, "fresh"));
    // At least 100 products with views: the top-100 cannot end in products without views, so no insert can
    // enter it unannounced and the API has no reason to read the whole ranking again.
    const ranked = await bounded("seed ranked", seedProducts(db, 100, "ranked"));
    await bounded("rank them", db.sql`UPDATE products SET view_count = 1 WHERE id = ANY(${ranked}::uuid[])`);
    const api = await bounded("api start", startApi(config));
    const worker = await bounded("worker start", startWorker(config));
    try {
      const url = `http://127.0.0.1:${api.port}/api/v1/products`;
      const top = async () => (await (await fetch(`${url}/top?limit=1`)).json()) as Array<{ id: string; view_count: number }>;
      // Whatever other tests (or the fuzz run, which creates products with up to 10^12 views) left behind, the
      // new product is set level with the leader outside the API (no NOTIFY, no refresh due for 60 s): only
      // one view that goes through Kafka, the worker's flush and its NOTIFY can put it on top.
      await bounded(
        "level with the leader",
        db.sql`
        UPDATE products SET view_count = (SELECT coalesce(max(view_count), 0) FROM products) WHERE id = ${id!}`,
      );
      const metricsUrl = `http://127.0.0.1:${api.port}`;
      const fullBefore = await metric(metricsUrl, "top_refresh_seconds_count", '{kind="full"}');
      const partialBefore = await metric(metricsUrl, "top_refresh_seconds_count", '{kind="partial"}');
      const noticeBefore = await metric(metricsUrl, "top_refresh_seconds_count", '{kind="notice"}');
      expect((await post(`${url}/view`, { product_id: id })).status).toBe(202);
      await waitFor("new leader on /top", async () => (await top())[0]?.id === id, 30_000, 50);
      // It got there from the notice (the product was listed, level with the leader, since the API's first read)
      // or by primary-key reads of the old top and the flush's named products: never a table scan.
      expect(await metric(metricsUrl, "top_refresh_seconds_count", '{kind="full"}')).toBe(fullBefore);
      const partial = (await metric(metricsUrl, "top_refresh_seconds_count", '{kind="partial"}')) - partialBefore;
      const notice = (await metric(metricsUrl, "top_refresh_seconds_count", '{kind="notice"}')) - noticeBefore;
      expect(partial + notice).toBeGreaterThan(0);
      // Listed now: its next view reaches /top from the notice alone, with no read.
      const noticeMid = await metric(metricsUrl, "top_refresh_seconds_count", '{kind="notice"}');
      const count = (await top())[0]!.view_count;
      expect((await post(`${url}/view`, { product_id: id })).status).toBe(202);
      await waitFor("its new count on /top", async () => (await top())[0]?.view_count === count + 1 || undefined, 30_000, 50);
      expect(await metric(metricsUrl, "top_refresh_seconds_count", '{kind="notice"}')).toBeGreaterThan(noticeMid);
    } finally {
      await bounded("api.stop", api.stop());
      await bounded("worker.stop", worker.stop());
      await bounded("db.close", db.close());
    }
  });
});
