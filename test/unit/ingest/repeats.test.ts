import { describe, expect, test } from "bun:test";
import { createRepeatMemory, pairKey } from "../../../src/ingest/repeats.ts";

const P = "00000000-0000-4000-8000-000000000001";
const Q = "00000000-0000-4000-8000-000000000002";

describe("repeat memory", () => {
  test("a pair counted within the window is a repeat; after it, it counts again and the window restarts", () => {
    const m = createRepeatMemory({ windowMs: 1000, capacity: 100 });
    const a = pairKey(1n, P);
    expect(m.check(a, 0)).toBe(false);
    expect(m.check(a, 999)).toBe(true);
    expect(m.check(a, 1000)).toBe(false);
    expect(m.check(a, 1999)).toBe(true);
    expect(m.check(a, 2000)).toBe(false);
  });

  test("pairs differ by viewer and by product; a forgotten pair counts again, unless it was counted again since", () => {
    const m = createRepeatMemory({ windowMs: 1000, capacity: 100 });
    expect(new Set([pairKey(1n, P), pairKey(2n, P), pairKey(1n, Q), pairKey(-1n, P)]).size).toBe(4);
    const a = pairKey(1n, P);
    expect(m.check(a, 0)).toBe(false);
    m.forget(a, 0);
    expect(m.check(a, 10)).toBe(false);
    m.forget(a, 0); // a stale undo: the pair was counted again at 10
    expect(m.check(a, 20)).toBe(true);
  });

  test("bounded: the oldest pairs go first when full, and expired ones leave as new ones come", () => {
    const m = createRepeatMemory({ windowMs: 1_000_000, capacity: 1000 });
    for (let i = 0; i < 5000; i++) m.check(pairKey(BigInt(i), P), i);
    expect(m.size).toBe(1000);
    expect(m.check(pairKey(4999n, P), 5000)).toBe(true);
    expect(m.check(pairKey(0n, P), 5000)).toBe(false); // dropped: counted again
    const short = createRepeatMemory({ windowMs: 100, capacity: 1000 });
    for (let i = 0; i < 500; i++) short.check(pairKey(BigInt(i), P), i);
    short.check(pairKey(9999n, P), 10_000);
    expect(short.size).toBe(1);
  });
});
