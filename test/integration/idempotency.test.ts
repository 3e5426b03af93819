import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { start as startApi } from "../../src/entry/api.ts";
import { start as startWorker } from "../../src/entry/worker.ts";
import { loadConfig } from "../../src/config.ts";
import { seedProducts, viewCounts } from "./harness/db.ts";
import { metric, post, TRUSTED } from "./harness/http.ts";
import { prepare, testEnv } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

// Idempotency-Key end to end on real Kafka and Postgres. Two API processes' worth of state: `api` remembers the
// keys it saw (its repeats are answered from memory), `forgetful` remembers none, as a second API process or
// one restarted since would not: its repeats go to Kafka again and only the worker can keep them from counting.
describe("Idempotency-Key on real Kafka and Postgres", () => {
  const env = testEnv();
  let ctx: Awaited<ReturnType<typeof prepare>>;
  let api: Awaited<ReturnType<typeof startApi>>;
  let forgetful: Awaited<ReturnType<typeof startApi>>;
  let worker: Awaited<ReturnType<typeof startWorker>>;
  let ids: string[];
  const urlOf = (a: { port: number }) => `http://127.0.0.1:${a.port}`;
  const view = (a: { port: number }, id: string, key?: string) =>
    post(`${urlOf(a)}/api/v1/products/view`, { product_id: id }, key === undefined ? {} : { "idempotency-key": key });
  const workerUrl = () => `http://127.0.0.1:${worker.port}`;
  const repeats = async () => metric(workerUrl(), "worker_idempotent_repeats_total", '{body="same"}');

  beforeAll(async () => {
    ctx = await prepare(env);
    ids = await seedProducts(ctx.db, 6, "idem");
    api = await startApi(ctx.config);
    forgetful = await startApi(loadConfig({ ...env, IDEMPOTENCY_MEMORY_KEYS: "0" }));
    worker = await startWorker(ctx.config);
  });
  afterAll(async () => {
    await bounded("api.stop", api?.stop() ?? Promise.resolve());
    await bounded("forgetful.stop", forgetful?.stop() ?? Promise.resolve());
    await bounded("worker.stop", worker?.stop() ?? Promise.resolve());
    await bounded("ctx.db.close", ctx.db.close());
  });

  test("a view repeated with its key is counted once, whether the API remembers the key or only the worker does", async () => {
    const key = crypto.randomUUID();
    for (const target of [api, api, forgetful, forgetful]) expect((await view(target, ids[0]!, `"${key}"`)).status).toBe(202);
    // The two repeats `api` answered from memory never reached Kafka; the two `forgetful` produced did.
    await waitFor("the worker to see the two repeats", async () => (await repeats()) >= 2, 30_000);
    expect(await repeats()).toBe(2);
    expect((await viewCounts(ctx.db, [ids[0]!])).get(ids[0]!)).toBe(1);
    // Bare and quoted forms are the same key.
    expect((await view(forgetful, ids[0]!, key)).status).toBe(202);
    await waitFor("the worker to see the bare-key repeat", async () => (await repeats()) >= 3, 30_000);
    expect((await viewCounts(ctx.db, [ids[0]!])).get(ids[0]!)).toBe(1);
  });

  test("a batch repeated with its key is counted once; without a key every request counts", async () => {
    const key = `batch-${crypto.randomUUID()}`;
    const batch = { views: [{ product_id: ids[1] }, { product_id: ids[2], count: 5 }, { product_id: ids[1], count: 2 }] };
    const before = await repeats();
    // `api` has not seen this key either: all three attempts reach the worker, which counts the first.
    for (const target of [forgetful, forgetful, api]) {
      const res = await post(`${urlOf(target)}/api/v1/products/views`, batch, { "idempotency-key": key });
      expect(res.status).toBe(202);
      expect(await res.json()).toEqual({ accepted: 8 });
    }
    for (let i = 0; i < 2; i++) expect((await post(`${urlOf(forgetful)}/api/v1/products/views`, batch)).status).toBe(202);
    await waitFor(
      "the keyed batch counted once, both unkeyed ones counted, two repeats skipped",
      async () => {
        const c = await viewCounts(ctx.db, [ids[1]!, ids[2]!]);
        return c.get(ids[1]!) === 9 && c.get(ids[2]!) === 15 && (await repeats()) === before + 2;
      },
      30_000,
    );
  });

  test("a repeat after the worker restarted is still counted once (the keys live in Postgres)", async () => {
    const key = crypto.randomUUID();
    expect((await view(forgetful, ids[3]!, key)).status).toBe(202);
    await waitFor("the first view counted", async () => (await viewCounts(ctx.db, [ids[3]!])).get(ids[3]!) === 1, 30_000);
    await bounded("worker.stop", worker.stop());
    worker = await startWorker(ctx.config);
    expect((await view(forgetful, ids[3]!, key)).status).toBe(202);
    await waitFor("the new worker to skip the repeat", async () => (await repeats()) === 1, 30_000);
    expect((await viewCounts(ctx.db, [ids[3]!])).get(ids[3]!)).toBe(1);
  });

  test("the same key with another body is 422 where the key is remembered; at the worker the first body wins", async () => {
    const key = crypto.randomUUID();
    expect((await view(api, ids[5]!, key)).status).toBe(202);
    // Counted before the other body is sent: "first" is then the order the worker sees them in.
    await waitFor("the first body counted", async () => (await viewCounts(ctx.db, [ids[5]!])).get(ids[5]!) === 1, 30_000);
    const res = await view(api, ids[4]!, key);
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ code: "idempotency_key_reused" });
    const before = (await viewCounts(ctx.db, [ids[4]!])).get(ids[4]!)!;
    expect((await view(forgetful, ids[4]!, key)).status).toBe(202);
    await waitFor(
      "the worker to report the mismatch",
      async () => (await metric(workerUrl(), "worker_idempotent_repeats_total", '{body="different"}')) === 1,
      30_000,
    );
    const after = await viewCounts(ctx.db, [ids[4]!, ids[5]!]);
    expect(after.get(ids[5]!)).toBe(1);
    expect(after.get(ids[4]!)).toBe(before);
  });

  test("a malformed key is 400 with a JSON error, and nothing is produced", async () => {
    for (const key of ["x".repeat(256), '"a\\b"', '""']) {
      const res = await view(api, ids[0]!, key);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: "idempotency_key_invalid" });
    }
    const res = await fetch(`${urlOf(api)}/api/v1/products/view`, {
      method: "POST",
      headers: { ...TRUSTED, "content-type": "application/json", "idempotency-key": "" },
      body: JSON.stringify({ product_id: ids[0] }),
    });
    expect(res.status).toBe(400);
  });
});
