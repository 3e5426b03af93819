import { describe, expect, test } from "bun:test";
import { coalesceBatch, decodeViewMessage, encodeViewEvents, readViewMessage } from "../../../src/domain/view.ts";

const ID = "3f2b8c1e-6d7a-4e1b-9c3d-2a1f0e9b8c7d";

describe("view event", () => {
  test("public views carry their viewers through the payload; a viewer that is no signed 64-bit decimal is malformed", () => {
    const events = [{ product_id: ID, count: 2, viewers: ["-9223372036854775808", "42"] }];
    expect(decodeViewMessage(encodeViewEvents(events))).toEqual({ views: events, keyed: [], at: null });
    const keyed = [{ key: "a".repeat(32), fp: "b".repeat(32), views: [{ product_id: ID, count: 1, viewers: ["7"] }] }];
    expect(decodeViewMessage(encodeViewEvents([], keyed))).toEqual({ views: [], keyed, at: null });
    for (const bad of ["1.5", "x", "12345678901234567890", ""]) {
      expect(decodeViewMessage(Buffer.from(JSON.stringify({ product_id: ID, count: 1, viewers: [bad] })))).toBeNull();
    }
  });

  test("says why a message cannot be counted", () => {
    const of = (v: unknown) => readViewMessage(Buffer.from(typeof v === "string" ? v : JSON.stringify(v)));
    expect(readViewMessage(Buffer.alloc(0))).toEqual({ error: "empty message" });
    expect(of("{nope")).toEqual({ error: "not JSON" });
    expect(of({ views: "x" })).toEqual({ error: "not a view message (schema)" });
    expect(of({ views: [] })).toEqual({ error: "no views" });
    const poisoned = { views: Array.from({ length: 4000 }, () => ({ product_id: ID, count: 1e15 })) };
    expect(of(poisoned)).toEqual({ error: "more than 1000000000000 views in one message" });
    expect(of({ views: [{ product_id: ID, count: 1e12 }] })).toEqual({ views: [{ product_id: ID, count: 1e12 }], keyed: [], at: null });
  });

  test("round-trips through its Kafka payload", () => {
    expect(decodeViewMessage(encodeViewEvents([{ product_id: ID, count: 3 }]))?.views).toEqual([{ product_id: ID, count: 3 }]);
  });

  test("a group of products round-trips as one payload", () => {
    const other = "00000000-0000-4000-8000-000000000001";
    const group = [
      { product_id: ID, count: 3 },
      { product_id: other, count: 1 },
    ];
    expect(String(encodeViewEvents(group))).toStartWith('{"views":[');
    expect(decodeViewMessage(encodeViewEvents(group))?.views).toEqual(group);
  });

  test("keyed requests travel beside the merged views, each with its digests, and round-trip", () => {
    const other = "00000000-0000-4000-8000-000000000001";
    const keyed = [
      { key: "a".repeat(32), fp: "b".repeat(32), views: [{ product_id: other, count: 2 }] },
      { key: "c".repeat(32), fp: "d".repeat(32), views: [{ product_id: ID, count: 1 }] },
    ];
    expect(decodeViewMessage(encodeViewEvents([{ product_id: ID, count: 3 }], keyed))).toEqual({
      views: [{ product_id: ID, count: 3 }],
      keyed,
      at: null,
    });
    expect(decodeViewMessage(encodeViewEvents([], keyed))).toEqual({ views: [], keyed, at: null });
  });

  test("normalises upper-case ids so one product keeps one key", () => {
    expect(decodeViewMessage(Buffer.from(`{"product_id":"${ID.toUpperCase()}","count":1}`))?.views[0]?.product_id).toBe(ID);
  });

  test.each([
    ["empty", ""],
    ["not json", "{oops"],
    ["array", "[]"],
    ["missing id", '{"count":1}'],
    ["bad id", '{"product_id":"x","count":1}'],
    ["zero count", `{"product_id":"${ID}","count":0}`],
    ["fractional count", `{"product_id":"${ID}","count":1.5}`],
    ["string count", `{"product_id":"${ID}","count":"1"}`],
    ["empty group", '{"views":[]}'],
    ["group with a bad item", `{"views":[{"product_id":"${ID}","count":1},{"product_id":"x","count":1}]}`],
    [
      "keyed entry with a bad digest",
      `{"views":[],"keyed":[{"key":"k","fp":"${"0".repeat(32)}","views":[{"product_id":"${ID}","count":1}]}]}`,
    ],
    ["keyed entry without views", `{"views":[],"keyed":[{"key":"${"0".repeat(32)}","fp":"${"0".repeat(32)}","views":[]}]}`],
    ["nothing at all", '{"views":[],"keyed":[]}'],
  ])("rejects a malformed payload: %s", (_, text) => {
    expect(decodeViewMessage(Buffer.from(text))).toBeNull();
  });

  test("a batch request becomes one event per distinct product with summed counts", () => {
    const other = "00000000-0000-4000-8000-000000000001";
    expect(coalesceBatch([{ product_id: ID }, { product_id: other, count: 5 }, { product_id: ID.toUpperCase(), count: 2 }])).toEqual([
      { product_id: ID, count: 3 },
      { product_id: other, count: 5 },
    ]);
  });
});
