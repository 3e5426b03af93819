import { describe, expect, test } from "bun:test";
import { createCatalog } from "../../../src/ingest/catalog.ts";

const A = "00000000-0000-4000-8000-00000000000a";
const B = "00000000-0000-4000-8000-00000000000b";

describe("catalog of known products", () => {
  test("looks up concurrent misses in one query and remembers known ids", async () => {
    const calls: string[][] = [];
    const c = createCatalog(async (ids) => {
      calls.push(ids);
      return new Set(ids.filter((id) => id === A));
    });
    const [x, y] = await Promise.all([c.unknown([A]), c.unknown([A, B])]);
    expect(x).toEqual([]);
    expect(y).toEqual([B]);
    expect(calls).toEqual([[A, B]]);
    expect(await c.unknown([A])).toEqual([]);
    expect(calls).toHaveLength(1);
  });

  test("an unknown id is remembered only for the negative TTL", async () => {
    let exists = false;
    let queries = 0;
    const c = createCatalog(async (ids) => (queries++, new Set(exists ? ids : [])), { negativeTtlMs: 30 });
    expect(await c.unknown([A])).toEqual([A]);
    exists = true;
    expect(await c.unknown([A])).toEqual([A]);
    expect(queries).toBe(1);
    await Bun.sleep(40);
    expect(await c.unknown([A])).toEqual([]);
  });

  test("a product created through the API is known at once", async () => {
    const c = createCatalog(async () => new Set(), { negativeTtlMs: 60_000 });
    expect(await c.unknown([A])).toEqual([A]);
    c.remember(A);
    expect(await c.unknown([A])).toEqual([]);
  });

  test("a failed lookup is a retryable database error, not an unknown product", async () => {
    const c = createCatalog(async () => {
      throw Object.assign(new Error("down"), { code: "ECONNREFUSED" });
    });
    await expect(c.unknown([A])).rejects.toMatchObject({ code: "database_unavailable", retryable: true });
  });
});
