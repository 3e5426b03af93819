import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { start as startApi } from "../../src/entry/api.ts";
import { start as startWorker } from "../../src/entry/worker.ts";
import { seedProducts } from "./harness/db.ts";
import { BROWSER_UA, metric, TRUSTED } from "./harness/http.ts";
import { prepare, testEnv } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

// A real browser (Debian's headless Chromium) on a page from another origin than the API: what a shop's page
// does. Every test checks, through the API (GET /products/{id}), that exactly the views the page recorded
// were counted. scripts/test.sh installs Chromium where it can; without it these tests say so and skip.
const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser", process.env.CHROMIUM_PATH ?? ""].find((p) => p && existsSync(p));
if (!CHROMIUM) console.warn("browser tests skipped: no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)");

const CLIENT_DIR = join(import.meta.dir, "../../client");

function serveShop(req: Request): Response {
  const name = new URL(req.url).pathname.slice(1) || "demo.html";
  if (!/^[a-z-]+\.(html|js)$/.test(name)) return new Response("not found", { status: 404 });
  const file = Bun.file(join(CLIENT_DIR, name));
  return new Response(file, { headers: { "content-type": name.endsWith(".js") ? "text/javascript" : "text/html" } });
}

describe.skipIf(!CHROMIUM)("from a web page on another origin (headless Chromium)", () => {
  const env = testEnv({ FLUSH_INTERVAL_MS: "100" });
  let ctx: Awaited<ReturnType<typeof prepare>>;
  let api: Awaited<ReturnType<typeof startApi>>;
  let worker: Awaited<ReturnType<typeof startWorker>>;
  let pages: ReturnType<typeof Bun.serve>;
  let browser: Browser;
  let apiUrl: string;

  beforeAll(async () => {
    ctx = await prepare(env);
    api = await startApi(ctx.config);
    worker = await startWorker(ctx.config);
    apiUrl = `http://127.0.0.1:${api.port}`;
    // The shop: serves the demo page and the client file from its own origin (another port = another origin).
    pages = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: serveShop });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      pipe: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
      protocolTimeout: 60_000,
    });
  });
  afterAll(async () => {
    await bounded("browser.close", browser?.close() ?? Promise.resolve()).catch(() => browser?.process()?.kill("SIGKILL"));
    pages?.stop(true);
    await bounded("api.stop", api?.stop() ?? Promise.resolve());
    await bounded("worker.stop", worker?.stop() ?? Promise.resolve());
    await bounded("ctx.db.close", ctx.db.close());
  });

  async function openShop(products: string[] = [], opts: { api?: string; shop?: number } = {}): Promise<Page> {
    const page = await browser.newPage();
    // Headless Chromium says "HeadlessChrome", which the API takes for a bot (isbot): a person's browser does not.
    await page.setUserAgent(BROWSER_UA);
    const api = opts.api ?? apiUrl;
    await page.goto(`http://127.0.0.1:${opts.shop ?? pages.port}/demo.html?api=${encodeURIComponent(api)}&products=${products.join(",")}`);
    await page.waitForFunction(() => document.body.dataset.ready === "1", { timeout: 30_000 });
    return page;
  }

  /** view_count as the API serves it. */
  async function viewCount(id: string): Promise<number> {
    const res = await fetch(`${apiUrl}/api/v1/products/${id}`, { signal: AbortSignal.timeout(10_000) });
    return ((await res.json()) as { view_count: number }).view_count;
  }

  /**
   * Waits until each product shows its expected count, then until the worker holds nothing pending, and checks
   * the counts again: a view counted twice would have to be pending or in a later message by then.
   */
  async function expectCounted(expected: Record<string, number>) {
    await waitFor(
      `counts ${JSON.stringify(expected)}`,
      async () => {
        for (const [id, n] of Object.entries(expected)) if ((await viewCount(id)) !== n) return undefined;
        return true;
      },
      30_000,
      100,
    );
    const workerUrl = `http://127.0.0.1:${worker.port}`;
    await waitFor(
      "nothing pending in the worker",
      async () => (await metric(workerUrl, "worker_pending_products")) === 0 || undefined,
      30_000,
      50,
    );
    for (const [id, n] of Object.entries(expected)) expect(await viewCount(id)).toBe(n);
  }

  /** POST /views requests the API answered 202. */
  async function viewsRequests(): Promise<number> {
    const text = await (await fetch(`${apiUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const line = text
      .split("\n")
      .find(
        (l) =>
          l.startsWith("http_request_duration_seconds_count{") &&
          l.includes('route="/api/v1/products/views"') &&
          l.includes('method="POST"') &&
          l.includes('status="202"'),
      );
    return line ? Number(line.split(" ").pop()) : 0;
  }

  test("raw sendBeacon (text/plain) and a preflighted JSON fetch from another origin count once per viewer and product", async () => {
    const [beaconed, fetched] = await seedProducts(ctx.db, 2, "browser-raw");
    const page = await openShop();
    try {
      const result = await page.evaluate(
        async (api: string, a: string, b: string) => {
          const url = `${api}/api/v1/products/view`;
          const beacons = [1, 2, 3].map(() => navigator.sendBeacon(url, JSON.stringify({ product_id: a })));
          const res = await fetch(url, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ product_id: b }),
            keepalive: true,
          });
          return { beacons, status: res.status, body: await res.json() };
        },
        apiUrl,
        beaconed!,
        fetched!,
      );
      expect(result).toEqual({
        beacons: [true, true, true],
        status: 202,
        body: { status: "accepted", message: "View recorded successfully" },
      });
      // Three beacons of one product from one viewer: one view, two repeats (answered 200, not counted).
      await expectCounted({ [beaconed!]: 1, [fetched!]: 1 });
    } finally {
      await page.close();
    }
  });

  test("a page can read an error's JSON and status (CORS headers on errors too)", async () => {
    const page = await openShop();
    try {
      const result = await page.evaluate(async (api: string) => {
        const res = await fetch(`${api}/api/v1/products/view`, {
          method: "POST",
          headers: { "Content-Type": "text/plain" },
          body: JSON.stringify({ product_id: "nope" }),
        });
        return { status: res.status, body: await res.json() };
      }, apiUrl);
      expect(result.status).toBe(400);
      expect(result.body.code).toBe("invalid_request");
    } finally {
      await page.close();
    }
  });

  test("the client batches: 500 track() calls over 20 products become one request, each product counted once", async () => {
    const ids = await seedProducts(ctx.db, 20, "browser-batch");
    const page = await openShop(ids);
    const before = await viewsRequests();
    try {
      const stats = await page.evaluate(async (list: string[]) => {
        const t = (window as unknown as { tracker: import("../../client/product-views").Tracker }).tracker;
        for (let i = 0; i < 500; i++) t.track(list[i % list.length]!);
        await t.flush();
        return t.stats();
      }, ids);
      const requests = (await viewsRequests()) - before;
      console.log(
        `browser batching: 500 track() calls -> ${stats.requests} request(s) from the page, ${requests} POST /views answered 202`,
      );
      expect(stats).toMatchObject({ sent: 20, counted: 20, ignored: 0, failed: 0, requests: 1 });
      expect(requests).toBe(stats.requests);
      await expectCounted(Object.fromEntries(ids.map((id) => [id, 1])));
      // The same products again from the same viewer: answered, not counted (repeats), and the client says so.
      const again = await page.evaluate(async (list: string[]) => {
        const t = (window as unknown as { tracker: import("../../client/product-views").Tracker }).tracker;
        for (const id of list) t.track(id);
        await t.flush();
        return t.stats();
      }, ids);
      expect(again).toMatchObject({ counted: 20, ignored: 20, failed: 0, requests: 2 });
      await expectCounted(Object.fromEntries(ids.map((id) => [id, 1])));
    } finally {
      await page.close();
    }
  });

  test("with CORS_ORIGINS a list, the shop's page is counted and a page on another origin is refused, even a simple request", async () => {
    const [id] = await seedProducts(ctx.db, 1, "browser-origin");
    const evil = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: serveShop });
    const listed = await startApi({ ...ctx.config, http: { ...ctx.config.http, corsOrigins: [`http://127.0.0.1:${pages.port}`] } });
    const api = `http://127.0.0.1:${listed.port}`;
    try {
      // A no-cors text/plain POST: no preflight, and the page never sees the answer. Only the API can refuse it.
      const attack = async (page: Page) =>
        page.evaluate(
          async (url: string, pid: string) => {
            await fetch(url, { method: "POST", mode: "no-cors", body: JSON.stringify({ product_id: pid }) });
            return navigator.sendBeacon(url, JSON.stringify({ product_id: pid }));
          },
          `${api}/api/v1/products/view`,
          id!,
        );
      const foreign = await openShop([], { api, shop: evil.port! });
      expect(await attack(foreign)).toBe(true);
      await foreign.close();
      const shop = await openShop([], { api });
      const stats = await shop.evaluate(async (pid: string) => {
        const t = (window as unknown as { tracker: import("../../client/product-views").Tracker }).tracker;
        t.track(pid);
        await t.flush();
        return t.stats();
      }, id!);
      await shop.close();
      expect(stats).toMatchObject({ counted: 1, failed: 0 });
      await expectCounted({ [id!]: 1 });
      // Both attempts reached the API and were refused there (the beacon may land after the page closed).
      const refused = async () =>
        (await (await fetch(`${api}/metrics`)).text())
          .split("\n")
          .filter(
            (l) =>
              l.startsWith("http_request_duration_seconds_count{") && l.includes('"/api/v1/products/view"') && l.includes('status="403"'),
          )
          .reduce((n, l) => n + Number(l.split(" ").pop()), 0);
      await waitFor("two refused requests", async () => (await refused()) === 2 || undefined, 10_000);
      await expectCounted({ [id!]: 1 });
    } finally {
      await bounded("listed.stop", listed.stop());
      evil.stop(true);
    }
  });

  test("2 000 products tracked at once reach the API whole: no batch is refused for the browsers' 64 KiB keepalive cap", async () => {
    const ids = await seedProducts(ctx.db, 2000, "browser-keepalive");
    // Rates high enough for one viewer's 2 000 views at once: this test is about the browser's cap, not the API's.
    const trust = { ...ctx.config.trust, viewerBurst: 100_000, viewerPerS: 10_000, addressBurst: 100_000, addressPerS: 10_000 };
    const roomy = await startApi({ ...ctx.config, trust });
    try {
      const page = await openShop([], { api: `http://127.0.0.1:${roomy.port}` });
      const stats = await page.evaluate(async (list: string[]) => {
        const t = (window as unknown as { tracker: import("../../client/product-views").Tracker }).tracker;
        for (const id of list) t.track(id); // every 100th sends a batch at once: 20 in flight together
        await t.flush();
        const answered = () => t.stats().counted + t.stats().ignored + t.stats().failed === list.length;
        while (!answered() && t.inFlight() + t.pending() > 0) await new Promise((r) => setTimeout(r, 20));
        return t.stats();
      }, ids);
      await page.close();
      expect(stats).toMatchObject({ requests: 20, counted: 2000, ignored: 0, failed: 0 });
      await waitFor("2 000 views counted", async () => {
        const counts = await ctx.db.sql<{ n: string }[]>`SELECT sum(view_count) AS n FROM products WHERE id = ANY(${ids}::uuid[])`;
        return Number(counts[0]!.n) === 2000 || undefined;
      });
    } finally {
      await bounded("roomy.stop", roomy.stop());
    }
  });

  test("a page closed right after track() still delivers its views (beacon on pagehide)", async () => {
    const [id] = await seedProducts(ctx.db, 1, "browser-close");
    const page = await openShop([id!]);
    const pending = await page.evaluate((pid: string) => {
      const t = (window as unknown as { tracker: import("../../client/product-views").Tracker }).tracker;
      t.track(pid);
      t.track(pid);
      return t.pending();
    }, id!);
    expect(pending).toBe(1); // nothing sent yet (the flush timer has not fired), one product once
    await page.close({ runBeforeUnload: false });
    await expectCounted({ [id!]: 1 });
  });
  test("the live page at / shows the top 10 and updates itself when views change the ranking", async () => {
    const [id] = await seedProducts(ctx.db, 1, "browser-live");
    // Level with the leader outside the API (no NOTIFY): only views through Kafka and the worker's flush can
    // then put it first on the page, which only the stream can tell the page.
    await ctx.db.sql`UPDATE products SET view_count = (SELECT coalesce(max(view_count), 0) FROM products) WHERE id = ${id!}`;
    const base = await viewCount(id!);
    const page = await browser.newPage();
    try {
      await page.goto(`${apiUrl}/`);
      await page.waitForFunction(() => document.querySelectorAll("#rows tr").length > 0, { timeout: 30_000 });
      expect(await page.$eval("#status", (e) => e.textContent)).toBe("live");
      const firstRow = () =>
        page.$eval("#rows tr", (tr) => ({ id: (tr as HTMLElement).dataset.id, count: tr.querySelector(".count")?.textContent }));
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${apiUrl}/api/v1/products/view`, {
          method: "POST",
          headers: { ...TRUSTED, "content-type": "application/json" },
          body: JSON.stringify({ product_id: id }),
        });
        expect(res.status).toBe(202);
      }
      await expectCounted({ [id!]: base + 3 });
      // Strictly above the old leader now: first on the page, with the count the API serves.
      await page.waitForFunction(
        (want: string) => document.querySelector("#rows tr .count")?.textContent === want,
        { timeout: 30_000 },
        (base + 3).toLocaleString("en"),
      );
      expect((await firstRow()).id).toBe(id);
      // The second ranking: the public views of the tests above made unique viewers, which its stream lists.
      await page.waitForFunction(() => document.querySelectorAll("#rows-unique tr").length > 0, { timeout: 30_000 });
      // Trending: this file's products got views within the hour; each row has its last 24 hours drawn as 24 bars.
      await page.waitForFunction(() => document.querySelectorAll("#rows-trending tr").length > 0, { timeout: 30_000 });
      await page.waitForFunction(() => document.querySelectorAll("#rows-trending tr td.chart svg rect").length >= 24, { timeout: 30_000 });
      await page.waitForFunction(
        (want: string) => document.querySelectorAll(`#rows tr[data-id="${want}"] td.chart svg rect`).length === 24,
        { timeout: 30_000 },
        id!,
      );
    } finally {
      await page.close();
    }
  });

  test("the Swagger UI at /swagger renders the API's operations offline (no CDN)", async () => {
    const page = await browser.newPage();
    const external: string[] = [];
    page.on("request", (req) => {
      // data: URLs are inline images of the UI itself; anything else must come from the API.
      if (!req.url().startsWith(apiUrl) && !req.url().startsWith("data:")) external.push(req.url());
    });
    try {
      await page.goto(`${apiUrl}/swagger`);
      await page.waitForFunction(() => document.querySelectorAll(".opblock").length >= 6, { timeout: 30_000 });
      const paths = await page.$$eval(".opblock-summary-path", (els) => els.map((e) => e.textContent?.replace(/\u200b/g, "")));
      expect(paths).toContain("/api/v1/products/view");
      expect(paths).toContain("/api/v1/products/top/stream");
      expect(external).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
