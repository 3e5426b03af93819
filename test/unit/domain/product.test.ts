import { describe, expect, test } from "bun:test";
import { normaliseNewProduct, parseTopLimit } from "../../../src/domain/product.ts";

describe("top limit", () => {
  test("defaults to 10 when absent", () => expect(parseTopLimit(undefined)).toBe(10));
  test.each(["1", "10", "100", "007"])("accepts %s", (v) => expect(parseTopLimit(v)).toBe(Number(v)));
  test.each(["0", "-1", "101", "1e3", "abc", "10.0", "", " 5", "1000"])("rejects %p", (v) => {
    expect(typeof parseTopLimit(v)).toBe("string");
  });
  test("rejects a repeated parameter", () => expect(typeof parseTopLimit(["1", "2"])).toBe("string"));
});

describe("new product", () => {
  test("applies defaults", () => {
    expect(normaliseNewProduct({ name: "Lamp" })).toEqual({ name: "Lamp", description: "", viewCount: 0 });
  });
});
