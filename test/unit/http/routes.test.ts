import { describe, expect, test } from "bun:test";
import { methodsFor } from "../../../src/http/app.ts";

describe("405 from the app's own routes", () => {
  const allowed = methodsFor([
    { method: "POST", path: "/api/v1/products/view" },
    { method: "GET", path: "/api/v1/products/top" },
    { method: "GET", path: "/api/v1/products/:id" },
    { method: "POST", path: "/api/v1/products" },
    { method: "GET", path: "/swagger/assets/:file" },
  ]);

  test("a static path wins over a parameter, as in the router", () => {
    expect(allowed("/api/v1/products/view")).toEqual(["POST"]);
    expect(allowed("/api/v1/products/top")).toEqual(["GET"]);
  });

  test("a parameter matches one segment, and unknown paths have no methods (404)", () => {
    expect(allowed("/api/v1/products/3f1c9a52-0000-4000-8000-000000000001")).toEqual(["GET"]);
    expect(allowed("/api/v1/products/a/b")).toEqual([]);
    expect(allowed("/swagger/assets/app.css")).toEqual(["GET"]);
    expect(allowed("/nope")).toEqual([]);
  });
});
