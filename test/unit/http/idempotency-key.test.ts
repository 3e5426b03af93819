import { describe, expect, test } from "bun:test";
import { AppError } from "../../../src/errors.ts";
import { inProcessApp, TEST_ID } from "./in-process.ts";

const viewWithKey = (key: string) => ({
  method: "POST",
  headers: { "content-type": "application/json", "idempotency-key": key },
  body: JSON.stringify({ product_id: TEST_ID }),
});

describe("Idempotency-Key over HTTP", () => {
  test("both view routes hand the parsed key to the recorder, quoted or bare; no header means no key", async () => {
    const { call, post, keys } = inProcessApp();
    expect((await call("/api/v1/products/view", viewWithKey('"k-1"'))).status).toBe(202);
    const batch = await call("/api/v1/products/views", {
      ...viewWithKey("k-2"),
      body: JSON.stringify({ views: [{ product_id: TEST_ID }] }),
    });
    expect(batch.status).toBe(202);
    expect((await post("/api/v1/products/view", { product_id: TEST_ID })).status).toBe(202);
    expect(keys).toEqual(["k-1", "k-2", undefined]);
  });

  test("a malformed key is 400 idempotency_key_invalid, and nothing is recorded", async () => {
    const { call, recorded } = inProcessApp();
    for (const key of ["x".repeat(256), '"unterminated\\"', '""']) {
      const res = await call("/api/v1/products/view", viewWithKey(key));
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: "idempotency_key_invalid" });
    }
    expect(recorded).toEqual([]);
  });

  test("a repeat in flight is 409 with Retry-After; a reused key with another body is 422", async () => {
    const inFlight = inProcessApp({
      failViews: new AppError("idempotency_key_in_flight", "still being processed", { retryable: true }),
    });
    const busy = await inFlight.call("/api/v1/products/view", viewWithKey("k"));
    expect(busy.status).toBe(409);
    expect(busy.headers.get("retry-after")).toBe("1");
    expect(await busy.json()).toMatchObject({ code: "idempotency_key_in_flight" });
    const reused = inProcessApp({ failViews: new AppError("idempotency_key_reused", "another body") });
    const res = await reused.call("/api/v1/products/view", viewWithKey("k"));
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ code: "idempotency_key_reused" });
  });
});
