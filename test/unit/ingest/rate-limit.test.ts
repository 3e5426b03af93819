import { describe, expect, test } from "bun:test";
import { createRateLimiter } from "../../../src/ingest/rate-limit.ts";

describe("rate limiter (token buckets in views)", () => {
  test("a key takes its burst at once, then perS a second; a refusal takes nothing and says how long to wait", () => {
    const r = createRateLimiter({ burst: 10, perS: 2, capacity: 100 });
    expect(r.take("a", 10, 0)).toBe(0);
    expect(r.take("a", 1, 0)).toBe(1); // 1 view at 2/s: half a second, said as 1 s
    expect(r.take("a", 5, 0)).toBe(3);
    expect(r.take("a", 1, 499)).toBe(1);
    expect(r.take("a", 1, 500)).toBe(0);
    expect(r.take("b", 10, 500)).toBe(0); // another key has its own bucket
    expect(r.take("a", 2, 1500)).toBe(0);
    expect(r.take("a", 1, 1500)).toBe(1);
  });

  test("perS 0 means no limit", () => {
    const r = createRateLimiter({ burst: 1, perS: 0, capacity: 10 });
    for (let i = 0; i < 100; i++) expect(r.take("a", 5, 0)).toBe(0);
    expect(r.size).toBe(0);
  });

  test("bounded: a flood of new keys holds at most `capacity` buckets, and refilled ones leave first", () => {
    const r = createRateLimiter({ burst: 10, perS: 1, capacity: 1000 });
    expect(r.take("hot", 10, 0)).toBe(0);
    for (let i = 0; i < 100_000; i++) r.take(`k${i}`, 1, 1);
    expect(r.size).toBeLessThanOrEqual(1000);
    // Long after, every bucket has refilled: new keys push them all out as they come.
    for (let i = 0; i < 10; i++) r.take(`late${i}`, 1, 1_000_000);
    expect(r.size).toBe(10);
  });

  test("below capacity, a bucket still being paid off is not dropped for a newer key", () => {
    const r = createRateLimiter({ burst: 10, perS: 1, capacity: 1000 });
    expect(r.take("hot", 10, 0)).toBe(0);
    for (let i = 0; i < 500; i++) r.take(`k${i}`, 1, 100);
    expect(r.take("hot", 1, 200)).toBe(1);
  });
});
