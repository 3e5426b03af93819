import { describe, expect, test } from "bun:test";
import { treaty } from "@elysiajs/eden";
import { loadConfig } from "../../../src/config.ts";
import type { ViewEvent } from "../../../src/domain/view.ts";
import { type App, createApp } from "../../../src/http/app.ts";
import { createLogger } from "../../../src/log.ts";
import { Registry } from "../../../src/metrics.ts";

// The typed client the README shows, against the app in-process: request bodies and answers are typed from the
// routes themselves (a wrong body would not compile), and errors arrive in the documented shape.
const ID = "00000000-0000-4000-8000-000000000001";

describe("typed client (@elysiajs/eden)", () => {
  test("records a view and a batch, and reads the top list, with typed bodies and answers", async () => {
    const recorded: ViewEvent[][] = [];
    const app: App = createApp({
      http: loadConfig({}).http,
      log: createLogger("silent", "test"),
      metrics: new Registry(),
      views: { record: async (events) => void recorded.push([...events]) },
      products: {
        create: async () => {
          throw new Error("not here");
        },
        get: async () => null,
        topJson: () => "[]",
        topStream: () => new Response(""),
      },
      ready: async () => ({ postgres: true, kafka: true }),
    });
    const api = treaty(app);
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
