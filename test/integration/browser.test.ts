import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { start as startApi } from "../../src/entry/api.ts";
import { start as startWorker } from "../../src/entry/worker.ts";
import { bounded, metric, prepare, seedProducts, testEnv, waitFor } from "./harness.ts";

// A real browser (Debian's headless Chromium) on a page from another origin than the API: what a shop's page
// does. Every test checks, through the API (GET /products/{id}), that exactly the views the page recorded
// were counted. scripts/test.sh installs Chromium where it can; without it these tests say so and skip.
const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser", process.env.CHROMIUM_PATH ?? ""].find((p) => p && existsSync(p));
if (!CHROMIUM) console.warn("browser tests skipped: no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)");

const CLIENT_DIR = join(import.meta.dir, "../../client");

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
    pages = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req) {
        const name = new URL(req.url).pathname.slice(1) || "demo.html";
        if (!/^[a-z-]+\.(html|js)$/.test(name)) return new Response("not found", { status: 404 });
        const file = Bun.file(join(CLIENT_DIR, name));
        return new Response(file, { headers: { "content-type": name.endsWith(".js") ? "text/javascript" : "text/html" } });
      },
    });
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

  async function openShop(products: string[] = []): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${pages.port}/demo.html?api=${encodeURIComponent(apiUrl)}&products=${products.join(",")}`);
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

  test("raw sendBeacon (text/plain) and a preflighted JSON fetch from another origin are each counted once", async () => {
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
      await expectCounted({ [beaconed!]: 3, [fetched!]: 1 });
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

  test("the client batches: 500 track() calls over 20 products become a handful of requests, counted exactly", async () => {
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
      expect(stats).toMatchObject({ sent: 500, failed: 0 });
      expect(stats.requests).toBeLessThanOrEqual(5);
      expect(requests).toBe(stats.requests);
      await expectCounted(Object.fromEntries(ids.map((id) => [id, 25])));
    } finally {
      await page.close();
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
    expect(pending).toBe(2); // nothing sent yet: the flush timer has not fired
    await page.close({ runBeforeUnload: false });
    await expectCounted({ [id!]: 2 });
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
          headers: { "content-type": "application/json" },
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
