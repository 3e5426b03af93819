import { describe, expect, test } from "bun:test";
import { treaty } from "@elysiajs/eden";
import type { App } from "../../../src/http/app.ts";
import { inProcessApp, TEST_ID as ID } from "./in-process.ts";

// The typed client the README shows, against the app in-process: request bodies and answers are typed from the
// routes themselves (a wrong body would not compile), and errors arrive in the documented shape.

describe("typed client (@elysiajs/eden)", () => {
  test("records a view and a batch, and reads the top list, with typed bodies and answers", async () => {
    const { app, recorded } = inProcessApp();
    // The same type a remote client names: treaty<App>("http://127.0.0.1:8080").
    const api = treaty<App>(app);
    const one = await api.api.v1.products.view.post({ product_id: ID });
    expect(one.status).toBe(202);
    expect(one.data).toEqual({ status: "accepted", message: "View recorded successfully" });
    const batch = await api.api.v1.products.views.post({ views: [{ product_id: ID, count: 3 }] });
    expect(batch.data).toEqual({ accepted: 3 });
    const top = await api.api.v1.products.top.get({ query: { limit: 5 } });
    expect(top.status).toBe(200);
    const missing = await api.api.v1.products({ id: ID }).get();
    expect(missing.status).toBe(404);
    expect(missing.error?.value).toMatchObject({ code: "product_not_found" });
    expect(recorded).toEqual([[{ product_id: ID, count: 1 }], [{ product_id: ID, count: 3 }]]);
  });
});
