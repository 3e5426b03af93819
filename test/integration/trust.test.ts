import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { start as startApi } from "../../src/entry/api.ts";
import { start as startWorker } from "../../src/entry/worker.ts";
import { loadConfig } from "../../src/config.ts";
import { seedProducts, viewCounts } from "./harness/db.ts";
import { BROWSER_UA, metric, postPublic, TRUSTED } from "./harness/http.ts";
import { prepare, testEnv } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

// What counts as a view (README): the rules for public callers, each tried the way an attacker or a crawler would,
// through HTTP, Kafka and Postgres. A view counts iff it was answered 202; every test ends by checking that
// Postgres holds exactly the views the API answered 202, after the worker has nothing pending.

const SHOP = "https://shop.example";
const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

describe("public callers on real Kafka and Postgres", () => {
  const env = testEnv({ CORS_ORIGINS: SHOP, RATE_ADDRESS_BURST: "300", RATE_ADDRESS_PER_S: "10" });
  let ctx: Awaited<ReturnType<typeof prepare>>;
  let api: Awaited<ReturnType<typeof startApi>>;
  let proxied: Awaited<ReturnType<typeof startApi>>;
  let worker: Awaited<ReturnType<typeof startWorker>>;
  let url: string;

  beforeAll(async () => {
    ctx = await prepare(env);
    api = await startApi(ctx.config);
    // The same service behind a proxy on this machine: X-Forwarded-For from 127.0.0.1 is believed.
    proxied = await startApi(loadConfig({ ...env, TRUSTED_PROXIES: "127.0.0.1,::1" }));
    worker = await startWorker(ctx.config);
    url = `http://127.0.0.1:${api.port}/api/v1/products`;
  });
  afterAll(async () => {
    await bounded("api.stop", Promise.all([api?.stop(), proxied?.stop()]));
    await bounded("worker.stop", worker?.stop() ?? Promise.resolve());
    await bounded("ctx.db.close", ctx.db.close());
  });

  /** Waits until each product holds exactly `expected` views and the worker holds nothing pending, then checks again. */
  async function expectCounted(expected: Record<string, number>) {
    const ids = Object.keys(expected);
    const exact = async () => {
      const counts = await viewCounts(ctx.db, ids);
      return ids.every((id) => counts.get(id) === expected[id]);
    };
    await waitFor(`counts ${JSON.stringify(expected)}`, async () => (await exact()) || undefined, 30_000);
    const workerUrl = `http://127.0.0.1:${worker.port}`;
    await waitFor("nothing pending", async () => (await metric(workerUrl, "worker_pending_products")) === 0 || undefined, 30_000, 50);
    expect(await exact()).toBe(true);
  }

  test("one anonymous text/plain request asking for a million views counts nothing, from any origin", async () => {
    const [p] = await seedProducts(ctx.db, 1, "attack");
    const body = JSON.stringify({ views: Array.from({ length: 1000 }, () => ({ product_id: p, count: 1000 })) });
    const plain = { "content-type": "text/plain" };
    const foreign = await postPublic(`${url}/views`, body, { ...plain, origin: "https://evil.example" });
    expect(foreign.status).toBe(403);
    expect(await foreign.json()).toMatchObject({ code: "forbidden" });
    const fromShop = await postPublic(`${url}/views`, body, { ...plain, origin: SHOP });
    expect(fromShop.status).toBe(403);
    expect(await fromShop.json()).toMatchObject({ code: "ingest_token_required" });
    const counted = await postPublic(`${url}/views`, { views: [{ product_id: p, count: 2 }] }, { origin: SHOP });
    expect(counted.status).toBe(403);
    const wrongToken = await postPublic(`${url}/views`, body, { ...plain, authorization: "Bearer not-the-ingest-token-at-all" });
    expect(wrongToken.status).toBe(401);
    // No Origin, but the browser says the request is cross-site (a form post from another site).
    const form = await postPublic(`${url}/view`, { product_id: p }, { ...plain, "sec-fetch-site": "cross-site" });
    expect(form.status).toBe(403);
    // The shop's backend, with the token, may send counts.
    const backend = await postPublic(`${url}/views`, { views: [{ product_id: p, count: 7 }] }, TRUSTED);
    expect(backend.status).toBe(202);
    expect(await backend.json()).toEqual({ accepted: 7 });
    await expectCounted({ [p!]: 7 });
  });

  test("fifty reloads by one viewer count once; the others are answered 200 repeat", async () => {
    const [p, q] = await seedProducts(ctx.db, 2, "reloads");
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) {
      const res = await postPublic(`${url}/view`, { product_id: p }, { origin: SHOP, "user-agent": `${BROWSER_UA} reloads` });
      statuses.push(res.status);
      if (i === 1) expect(await res.json()).toEqual({ status: "ignored", reason: "repeat" });
    }
    expect(statuses.filter((s) => s === 202).length).toBe(1);
    expect(statuses.filter((s) => s === 200).length).toBe(49);
    // Another viewer (another browser on the same address) counts; a batch naming p and q again counts only q.
    expect((await postPublic(`${url}/view`, { product_id: p }, { "user-agent": `${BROWSER_UA} other` })).status).toBe(202);
    const batch = await postPublic(
      `${url}/views`,
      { views: [{ product_id: p }, { product_id: q }, { product_id: q }] },
      {
        "user-agent": `${BROWSER_UA} reloads`,
      },
    );
    expect(batch.status).toBe(202);
    expect(await batch.json()).toEqual({ accepted: 1, ignored: 2 });
    await expectCounted({ [p!]: 2, [q!]: 1 });
    expect(await metric(`http://127.0.0.1:${api.port}`, "views_ignored_total", '{reason="repeat"}')).toBeGreaterThanOrEqual(51);
  });

  test("a crawler's views are answered 200 bot and not counted", async () => {
    const [p] = await seedProducts(ctx.db, 1, "crawler");
    for (const route of ["view", "views"]) {
      const body = route === "view" ? { product_id: p } : { views: [{ product_id: p }] };
      const res = await postPublic(`${url}/${route}`, body, { "user-agent": GOOGLEBOT });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: "ignored", reason: "bot" });
    }
    expect((await postPublic(`${url}/view`, { product_id: p })).status).toBe(202);
    await expectCounted({ [p!]: 1 });
    expect(await metric(`http://127.0.0.1:${api.port}`, "views_ignored_total", '{reason="bot"}')).toBeGreaterThanOrEqual(2);
  });

  test("X-Forwarded-For is believed only from a trusted proxy", async () => {
    const [p] = await seedProducts(ctx.db, 1, "xff");
    const ua = { "user-agent": `${BROWSER_UA} xff` };
    // Straight from the client: the header is the client's own words, so both requests are one viewer.
    expect((await postPublic(`${url}/view`, { product_id: p }, { ...ua, "x-forwarded-for": "203.0.113.1" })).status).toBe(202);
    expect((await postPublic(`${url}/view`, { product_id: p }, { ...ua, "x-forwarded-for": "203.0.113.2" })).status).toBe(200);
    // Through the trusted proxy: the right-most address it did not add itself is the client, a new viewer each.
    const behind = `http://127.0.0.1:${proxied.port}/api/v1/products/view`;
    expect((await postPublic(behind, { product_id: p }, { ...ua, "x-forwarded-for": "198.51.100.7, 203.0.113.3" })).status).toBe(202);
    expect((await postPublic(behind, { product_id: p }, { ...ua, "x-forwarded-for": "198.51.100.7, 203.0.113.4" })).status).toBe(202);
    // A client cannot choose its address by writing the header's left part: the proxy's entry is what counts.
    expect((await postPublic(behind, { product_id: p }, { ...ua, "x-forwarded-for": "192.0.2.9, 203.0.113.4" })).status).toBe(200);
    await expectCounted({ [p!]: 3 });
  });

  test("N distinct viewers are N unique viewers: repeats, a viewer's other products and trusted views add none", async () => {
    const [p, q] = await seedProducts(ctx.db, 2, "unique");
    const behind = `http://127.0.0.1:${proxied.port}/api/v1/products`;
    const as = (n: number) => ({ "x-forwarded-for": `198.18.${n >> 8}.${n & 255}`, "user-agent": `${BROWSER_UA} unique` });
    const statuses = await Promise.all(
      Array.from({ length: 40 }, (_, n) => postPublic(`${behind}/view`, { product_id: p }, as(n)).then((r) => r.status)),
    );
    expect(statuses.every((st) => st === 202)).toBe(true);
    // Ten of them again (repeats, 200), and on another product too.
    for (let n = 0; n < 10; n++) {
      expect((await postPublic(`${behind}/view`, { product_id: p }, as(n))).status).toBe(200);
      expect((await postPublic(`${behind}/view`, { product_id: q }, as(n))).status).toBe(202);
    }
    expect((await postPublic(`${url}/views`, { views: [{ product_id: p, count: 100 }] }, TRUSTED)).status).toBe(202);
    await expectCounted({ [p!]: 140, [q!]: 10 });
    const read = async (id: string) => (await (await fetch(`${url}/${id}`)).json()) as { view_count: number; unique_viewers: number };
    expect(await read(p!)).toMatchObject({ view_count: 140, unique_viewers: 40 });
    expect(await read(q!)).toMatchObject({ view_count: 10, unique_viewers: 10 });
    // Ranked by unique viewers (other tests' products share the table: p is listed where fewer than 100 outrank it).
    const [row] = await ctx.db.sql<{ above: number }[]>`
      SELECT count(*)::int AS above FROM products WHERE unique_viewers > 40 OR (unique_viewers = 40 AND id < ${p!})`;
    const above = row!.above;
    const top = async () =>
      (await (await fetch(`${url}/top?limit=100&by=unique_viewers`)).json()) as Array<{ id: string; unique_viewers: number }>;
    if (above < 100)
      await waitFor(
        "p in the unique-viewer ranking",
        async () => (await top()).some((r) => r.id === p && r.unique_viewers === 40) || undefined,
      );
    const list = await top();
    expect(list.every((r, i) => r.unique_viewers > 0 && (i === 0 || list[i - 1]!.unique_viewers >= r.unique_viewers))).toBe(true);
    if (above < 100) expect(list.findIndex((r) => r.id === p)).toBe(above);
    expect((await fetch(`${url}/top?by=likes`)).status).toBe(400);
  });

  test("one address sending 1 000 views in a few seconds is limited: 429 with Retry-After, and only what got 202 counts", async () => {
    const ids = await seedProducts(ctx.db, 100, "flood");
    let accepted = 0;
    let limited = 0;
    let retryAfter = "";
    // Ten viewers (User-Agents) on one address, each sending every product once: 1 000 distinct views.
    for (let v = 0; v < 10; v++) {
      const res = await postPublic(
        `${url}/views`,
        { views: ids.map((product_id) => ({ product_id })) },
        {
          "user-agent": `${BROWSER_UA} flood-${v}`,
        },
      );
      if (res.status === 202) accepted += ((await res.json()) as { accepted: number }).accepted;
      else {
        expect(res.status).toBe(429);
        expect(await res.json()).toMatchObject({ code: "rate_limited", limit: "address" });
        retryAfter = res.headers.get("retry-after") ?? "";
        limited++;
      }
    }
    expect(limited).toBeGreaterThan(0);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(accepted).toBeLessThan(1000);
    const counts = await viewCounts(ctx.db, ids);
    await waitFor("the accepted views", async () => {
      const now = await viewCounts(ctx.db, ids);
      return [...now.values()].reduce((a, b) => a + b, 0) === accepted || undefined;
    });
    expect(counts.size).toBe(100);
  });
});
