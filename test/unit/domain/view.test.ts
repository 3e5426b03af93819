import { describe, expect, test } from "bun:test";
import { coalesceBatch, decodeViewEvents, encodeViewEvents } from "../../../src/domain/view.ts";

const ID = "3f2b8c1e-6d7a-4e1b-9c3d-2a1f0e9b8c7d";

describe("view event", () => {
  test("round-trips through its Kafka payload", () => {
    expect(decodeViewEvents(encodeViewEvents([{ product_id: ID, count: 3 }]))).toEqual([{ product_id: ID, count: 3 }]);
  });

  test("a group of products round-trips as one payload", () => {
    const other = "00000000-0000-4000-8000-000000000001";
    const group = [
      { product_id: ID, count: 3 },
      { product_id: other, count: 1 },
    ];
    expect(String(encodeViewEvents(group))).toStartWith('{"views":[');
    expect(decodeViewEvents(encodeViewEvents(group))).toEqual(group);
  });

  test("normalises upper-case ids so one product keeps one key", () => {
    expect(decodeViewEvents(Buffer.from(`{"product_id":"${ID.toUpperCase()}","count":1}`))?.[0]?.product_id).toBe(ID);
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
  ])("rejects a malformed payload: %s", (_, text) => {
    expect(decodeViewEvents(Buffer.from(text))).toBeNull();
  });

  test("a batch request becomes one event per distinct product with summed counts", () => {
    const other = "00000000-0000-4000-8000-000000000001";
    expect(coalesceBatch([{ product_id: ID }, { product_id: other, count: 5 }, { product_id: ID.toUpperCase(), count: 2 }])).toEqual([
      { product_id: ID, count: 3 },
      { product_id: other, count: 5 },
    ]);
  });
});
