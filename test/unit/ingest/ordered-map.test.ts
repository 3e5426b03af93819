import { describe, expect, test } from "bun:test";
import { createOrderedMap } from "../../../src/ingest/ordered-map.ts";
import { seededRandom as rng } from "../seeded.ts";

describe("map that knows its oldest entry", () => {
  test("the oldest is the entry set longest ago; setting a key again makes it the newest", () => {
    const m = createOrderedMap<number>();
    expect(m.oldest()).toBeUndefined();
    m.set("a", 1);
    m.set("b", 2);
    m.set("c", 3);
    m.set("a", 4);
    expect(m.oldest()).toEqual({ key: "b", value: 2 });
    m.delete("b");
    expect(m.oldest()).toEqual({ key: "c", value: 3 });
    m.deleteOldest();
    expect(m.oldest()).toEqual({ key: "a", value: 4 });
    expect(m.size).toBe(1);
    m.deleteOldest();
    m.deleteOldest();
    expect(m.size).toBe(0);
    expect(m.get("a")).toBeUndefined();
  });

  test("an entry that stays the oldest while another is set 100 000 times is still the oldest, then the other", () => {
    const m = createOrderedMap<number>();
    m.set("first", 0);
    for (let i = 1; i <= 100_000; i++) m.set("again", i);
    expect(m.oldest()).toEqual({ key: "first", value: 0 });
    m.deleteOldest();
    expect(m.oldest()).toEqual({ key: "again", value: 100_000 });
    expect(m.size).toBe(1);
  });

  test("agrees with an ordered list over 300 000 seeded sets, deletes and evictions, its queue compacted on the way", () => {
    const next = rng(7);
    const m = createOrderedMap<number>();
    // The reference: keys in insertion order, each once.
    const order: string[] = [];
    const values = new Map<string, number>();
    const remove = (k: string) => {
      const i = order.indexOf(k);
      if (i >= 0) order.splice(i, 1);
      values.delete(k);
    };
    for (let i = 0; i < 300_000; i++) {
      const key = `k${Math.floor(next() * 500)}`;
      const r = next();
      if (r < 0.5) {
        m.set(key, i);
        remove(key);
        order.push(key);
        values.set(key, i);
      } else if (r < 0.7) {
        m.delete(key);
        remove(key);
      } else if (r < 0.85) {
        m.deleteOldest();
        if (order.length > 0) remove(order[0]!);
      }
      const want = order.length > 0 ? { key: order[0]!, value: values.get(order[0]!)! } : undefined;
      const got = m.oldest();
      if (got?.key !== want?.key || got?.value !== want?.value || m.size !== order.length || m.get(key) !== values.get(key)) {
        throw new Error(`step ${i}: oldest ${JSON.stringify(got)} size ${m.size}, expected ${JSON.stringify(want)} size ${order.length}`);
      }
    }
    expect(m.size).toBe(order.length);
  });
});
