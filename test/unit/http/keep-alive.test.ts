import { describe, expect, test } from "bun:test";
import { inProcessApp, TEST_ID } from "./in-process.ts";

// Every answer tells clients how long an idle connection is kept at least (test/integration/keep-alive.test.ts
// holds the server to it on real sockets).
describe("Keep-Alive header", () => {
  const { served } = inProcessApp({ env: { HTTP_IDLE_TIMEOUT_S: "7" } });
  const cases: Array<[string, string, RequestInit]> = [
    ["a counted view (fast path)", "/api/v1/products/view", { method: "POST", body: JSON.stringify({ product_id: TEST_ID }) }],
    ["a refused view (fast path)", "/api/v1/products/view", { method: "POST", body: "{" }],
    ["a read", "/health", {}],
    ["a 404", "/nowhere", {}],
    ["a 405", "/api/v1/products/view", { method: "GET" }],
  ];
  for (const [what, path, init] of cases) {
    test(`${what} says timeout=7`, async () => {
      const res = await served(path, { ...init, headers: { "content-type": "application/json" } });
      expect(res.headers.get("keep-alive")).toBe("timeout=7");
    });
  }
});
