import { describe, expect, test } from "bun:test";
import { createKeyMemory, keyTag } from "../../../src/ingest/idempotency.ts";

const A = "00000000-0000-4000-8000-00000000000a";
const B = "00000000-0000-4000-8000-00000000000b";

describe("key digests", () => {
  test("the same key and views give the same tag; another body gives another fingerprint, not another key", () => {
    const one = keyTag("k-1", [{ product_id: A, count: 1 }]);
    expect(one).toEqual(keyTag("k-1", [{ product_id: A, count: 1 }]));
    expect(one.key).toMatch(/^[0-9a-f]{32}$/);
    const other = keyTag("k-1", [{ product_id: B, count: 1 }]);
    expect(other.key).toBe(one.key);
    expect(other.fp).not.toBe(one.fp);
    expect(keyTag("k-1", [{ product_id: A, count: 2 }]).fp).not.toBe(one.fp);
    expect(keyTag("k-2", [{ product_id: A, count: 1 }]).key).not.toBe(one.key);
  });
});

describe("key memory", () => {
  const tag = (key: string, fp = "f") => ({ key, fp });

  test("a key is new, then in flight, then accepted; another body is a mismatch in either state", () => {
    const m = createKeyMemory({ windowMs: 1000, maxKeys: 10, now: () => 0 });
    expect(m.begin(tag("k"))).toBe("new");
    expect(m.begin(tag("k"))).toBe("in_flight");
    expect(m.begin(tag("k", "other"))).toBe("mismatch");
    m.accepted(tag("k"));
    expect(m.begin(tag("k"))).toBe("accepted");
    expect(m.begin(tag("k", "other"))).toBe("mismatch");
  });

  test("an attempt that failed is forgotten, so its retry is sent again", () => {
    const m = createKeyMemory({ windowMs: 1000, maxKeys: 10, now: () => 0 });
    m.begin(tag("k"));
    m.failed(tag("k"));
    expect(m.begin(tag("k"))).toBe("new");
    expect(m.size()).toBe(1);
  });

  test("a key is forgotten once its window has passed since it was accepted", () => {
    let t = 0;
    const m = createKeyMemory({ windowMs: 1000, maxKeys: 10, now: () => t });
    m.begin(tag("k"));
    t = 900;
    m.accepted(tag("k")); // the window runs from the 202
    t = 1800;
    expect(m.begin(tag("k"))).toBe("accepted");
    t = 1901;
    expect(m.begin(tag("other"))).toBe("new");
    expect(m.size()).toBe(1); // the sweep removed "k"
    expect(m.begin(tag("k"))).toBe("new");
  });

  test("a full memory forgets its oldest key first, and 0 keys remembers nothing", () => {
    const m = createKeyMemory({ windowMs: 1000, maxKeys: 2, now: () => 0 });
    for (const k of ["a", "b", "c"]) m.begin(tag(k));
    expect(m.size()).toBe(2);
    expect(m.begin(tag("b"))).toBe("in_flight");
    expect(m.begin(tag("a"))).toBe("new");
    const none = createKeyMemory({ windowMs: 1000, maxKeys: 0, now: () => 0 });
    expect(none.begin(tag("a"))).toBe("new");
    expect(none.begin(tag("a"))).toBe("new");
  });
});
