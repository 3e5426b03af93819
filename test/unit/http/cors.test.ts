import { describe, expect, test } from "bun:test";
import { AppError } from "../../../src/errors.ts";
import { inProcessApp } from "./in-process.ts";

// The HTTP layer in-process (app.handle): what a browser on another origin sees. The business side is a
// recorder that keeps what it was handed, so each test also proves what was (or was not) recorded.
const ID = "00000000-0000-4000-8000-000000000001";
const PAGE = "http://127.0.0.1:8095";

function app(env: Record<string, string> = {}, fail?: AppError) {
  return inProcessApp({ env, failViews: fail });
}

const preflight = (origin: string, method = "POST") => ({
  method: "OPTIONS",
  headers: { origin, "access-control-request-method": method, "access-control-request-headers": "content-type" },
});

describe("cross-origin calls", () => {
  test("a preflight for POST /view is answered 204 with the allowances and a long max-age", async () => {
    const res = await app().call("/api/v1/products/view", preflight(PAGE));
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-methods")).toBe("POST");
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("content-type");
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("idempotency-key");
    expect(Number(res.headers.get("access-control-max-age"))).toBeGreaterThanOrEqual(3600);
  });

  test("preflights for the batch route and the read routes name their own method", async () => {
    const { call } = app();
    expect((await call("/api/v1/products/views", preflight(PAGE))).headers.get("access-control-allow-methods")).toBe("POST");
    expect((await call("/api/v1/products/top", preflight(PAGE, "GET"))).headers.get("access-control-allow-methods")).toBe("GET");
    expect((await call(`/api/v1/products/${ID}`, preflight(PAGE, "GET"))).status).toBe(204);
  });

  test("product creation and the operator routes allow no cross-origin call", async () => {
    const { call } = app();
    for (const path of ["/api/v1/products", "/metrics"]) {
      const res = await call(path, preflight(PAGE));
      expect(res.status).toBe(405);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(((await res.json()) as { code: string }).code).toBe("method_not_allowed");
    }
  });

  test("a view from another origin gets 202 with Access-Control-Allow-Origin", async () => {
    const { call, recorded } = app();
    const res = await call("/api/v1/products/view", {
      method: "POST",
      headers: { origin: PAGE, "content-type": "application/json" },
      body: JSON.stringify({ product_id: ID }),
    });
    expect(res.status).toBe(202);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(recorded).toEqual([[{ product_id: ID, count: 1 }]]);
  });

  test("errors carry the CORS headers, so a page can read a 400 and a 503 with its Retry-After", async () => {
    const bad = await app().call("/api/v1/products/view", {
      method: "POST",
      headers: { origin: PAGE, "content-type": "text/plain" },
      body: "{",
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("access-control-allow-origin")).toBe("*");
    const down = await app({}, new AppError("ingest_unavailable", "retry later", { retryable: true, details: { written: "no" } })).call(
      "/api/v1/products/view",
      { method: "POST", headers: { origin: PAGE, "content-type": "application/json" }, body: JSON.stringify({ product_id: ID }) },
    );
    expect(down.status).toBe(503);
    expect(down.headers.get("access-control-allow-origin")).toBe("*");
    expect(down.headers.get("access-control-expose-headers")).toContain("Retry-After");
    expect(down.headers.get("retry-after")).toBe("1");
  });

  test("with CORS_ORIGINS set, a listed origin is echoed and any other is refused with a JSON 403", async () => {
    const { call } = app({ CORS_ORIGINS: `${PAGE}, https://shop.example` });
    const ok = await call("/api/v1/products/view", preflight(PAGE));
    expect(ok.status).toBe(204);
    expect(ok.headers.get("access-control-allow-origin")).toBe(PAGE);
    expect(ok.headers.get("vary")).toBe("Origin");
    const other = await call("/api/v1/products/view", preflight("https://evil.example"));
    expect(other.status).toBe(403);
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    expect(((await other.json()) as { code: string }).code).toBe("forbidden");
    const top = await call("/api/v1/products/top", { headers: { origin: "https://evil.example" } });
    expect(top.status).toBe(200);
    expect(top.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("beacon bodies", () => {
  test("POST /view and /views take text/plain (any charset) holding the same JSON", async () => {
    const { call, recorded } = app();
    const one = await call("/api/v1/products/view", {
      method: "POST",
      headers: { "content-type": "text/plain;charset=UTF-8" },
      body: JSON.stringify({ product_id: ID }),
    });
    expect(one.status).toBe(202);
    const many = await call("/api/v1/products/views", {
      method: "POST",
      headers: { "content-type": "text/plain; charset=iso-8859-1" },
      body: JSON.stringify({ views: [{ product_id: ID, count: 2 }] }),
    });
    expect(many.status).toBe(202);
    expect(await many.json()).toEqual({ accepted: 2 });
    expect(recorded).toEqual([[{ product_id: ID, count: 1 }], [{ product_id: ID, count: 2 }]]);
  });

  test("a text/plain body gets the same validation and limits as JSON", async () => {
    const { call, recorded } = app({ BODY_LIMIT_BYTES: "256" });
    const notUuid = await call("/api/v1/products/view", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ product_id: "x" }),
    });
    expect(notUuid.status).toBe(400);
    expect(((await notUuid.json()) as { code: string }).code).toBe("invalid_request");
    const big = await call("/api/v1/products/view", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ product_id: ID, pad: "x".repeat(400) }),
    });
    expect(big.status).toBe(413);
    expect(recorded).toEqual([]);
  });

  test("other content types stay 415, and product creation takes JSON only", async () => {
    const { call } = app();
    const form = await call("/api/v1/products/view", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `product_id=${ID}`,
    });
    expect(form.status).toBe(415);
    const create = await call("/api/v1/products", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ name: "x" }),
    });
    expect(create.status).toBe(415);
    expect(((await create.json()) as { code: string }).code).toBe("unsupported_media_type");
  });
});
