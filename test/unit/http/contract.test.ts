import { describe, expect, test } from "bun:test";
import { inProcessApp, TEST_ID as ID } from "./in-process.ts";

// Server and document agree on properties a body does not name: ignored by the server, and the document says
// so (additionalProperties: true), so a schema-driven client or fuzzer expects the 2xx it gets.

interface Schema {
  additionalProperties?: boolean;
  properties?: Record<string, Schema>;
  items?: Schema;
}
type Doc = { paths: Record<string, { post: { requestBody: { content: Record<string, { schema: Schema }> } } }> };

function app() {
  const a = inProcessApp({ env: { ADMIN_OPEN: "1" } });
  const doc = async () => (await (await a.call("/swagger/json")).json()) as Doc;
  return { ...a, doc };
}

describe("unknown body properties", () => {
  test("are ignored by every route with a body: nothing extra is recorded or stored", async () => {
    const { post, recorded, created } = app();
    expect((await post("/api/v1/products/view", { product_id: ID, ts: 1700000000, page: "/shoes" })).status).toBe(202);
    expect((await post("/api/v1/products/views", { views: [{ product_id: ID, count: 2, source: "feed" }], batch_id: "b1" })).status).toBe(
      202,
    );
    expect((await post("/api/v1/products", { name: "Lamp", surprise: 1 })).status).toBe(201);
    expect(recorded).toEqual([[{ product_id: ID, count: 1 }], [{ product_id: ID, count: 2 }]]);
    expect(created).toEqual([{ name: "Lamp", description: "", viewCount: 0 }]);
  });

  test("are allowed by the OpenAPI document, which says they are ignored", async () => {
    const spec = await app().doc();
    const body = (path: string, type = "application/json") => spec.paths[path]?.post.requestBody.content[type]?.schema;
    for (const path of ["/api/v1/products/view", "/api/v1/products/views", "/api/v1/products"]) {
      expect(body(path)?.additionalProperties).toBe(true);
    }
    expect(body("/api/v1/products/views")?.properties?.views?.items?.additionalProperties).toBe(true);
    expect(body("/api/v1/products/view", "text/plain")?.additionalProperties).toBe(true);
  });
});
