import { describe, expect, test } from "bun:test";
import { start as startApi } from "../../src/entry/api.ts";
import { start as startWorker } from "../../src/entry/worker.ts";
import { seedProducts } from "./harness/db.ts";
import { metric, post } from "./harness/http.ts";
import { prepare, testEnv } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

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
