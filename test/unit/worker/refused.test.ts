import { describe, expect, test } from "bun:test";
import { readViewMessage } from "../../../src/domain/view.ts";
import type { Batch } from "../../../src/worker/coalescer.ts";
import { findRefused, productsOf, setAsideLetters } from "../../../src/worker/refused.ts";

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

/** A dry run that refuses any set holding one of `bad`, and records how many times it ran. */
function refusing(bad: readonly string[]) {
  const runs: number[] = [];
  const dryRun = async (only: ReadonlySet<string>) => {
    runs.push(only.size);
    return bad.some((b) => only.has(b)) ? new Error("22003") : null;
  };
  return { dryRun, runs };
}

describe("finding the products Postgres refuses", () => {
  test("finds each refused product among many, in about 2·k·log2(n) dry runs", async () => {
    const products = Array.from({ length: 1000 }, (_, i) => id(i));
    const { dryRun, runs } = refusing([id(17), id(640)]);
    expect(await findRefused(products, dryRun)).toEqual(new Set([id(17), id(640)]));
    expect(runs.length).toBeLessThanOrEqual(2 * 2 * Math.ceil(Math.log2(1000)) + 1);
  });

  test("one product, or all of them", async () => {
    expect(await findRefused([id(1)], refusing([id(1)]).dryRun)).toEqual(new Set([id(1)]));
    const all = [id(1), id(2), id(3)];
    expect(await findRefused(all, refusing(all).dryRun)).toEqual(new Set(all));
  });

  test("a refusal no single product causes (each half passes alone) sets the whole set aside", async () => {
    const pair = [id(1), id(2)];
    const dryRun = async (only: ReadonlySet<string>) => (only.has(id(1)) && only.has(id(2)) ? new Error("23514") : null);
    expect(await findRefused([...pair, id(3), id(4)], dryRun)).toEqual(new Set([id(1), id(2)]));
  });

  test("a refusal that does not come back in a dry run of the whole batch sets nothing aside", async () => {
    expect(await findRefused([id(1), id(2)], async () => null)).toEqual(new Set());
  });

  test("a batch refused with none of its products: null, leaving products out cannot help", async () => {
    expect(await findRefused([id(1), id(2)], async () => new Error("23505"))).toBeNull();
  });
});

describe("set-aside views as dead letters", () => {
  const slice = (partition: number, base: number, next: number, parts: Partial<Batch["slices"][number]>) => ({
    partition,
    base,
    next,
    counts: new Map<string, number>(),
    minutes: new Map(),
    keyed: [],
    viewerIds: [],
    viewers: [],
    views: 0,
    ...parts,
  });

  test("per partition, only the refused products, in the views topic's own form, with the slice's offsets", () => {
    const key = "a".repeat(32);
    const batch: Batch = {
      slices: [
        slice(0, 10, 15, {
          counts: new Map([
            [id(1), 5],
            [id(2), 7],
          ]),
          viewerIds: [id(1), id(2)],
          viewers: ["11", "22"],
        }),
        slice(3, -1, 4, {
          counts: new Map([[id(3), 1]]),
          keyed: [
            {
              key,
              fp: "b".repeat(32),
              at: 1,
              views: [
                { product_id: id(1), count: 2 },
                { product_id: id(3), count: 1 },
              ],
            },
          ],
        }),
      ],
      products: 4,
      views: 16,
    };
    expect(productsOf(batch).sort()).toEqual([id(1), id(2), id(3)]);
    const letters = setAsideLetters(batch, new Set([id(1)]), "refused by Postgres: 22003");
    expect(letters.map(({ payload: _, ...rest }) => rest)).toEqual([
      { partition: 0, offset: 10, lastOffset: 14, reason: "refused by Postgres: 22003", views: 5 },
      { partition: 3, offset: 0, lastOffset: 3, reason: "refused by Postgres: 22003", views: 2 },
    ]);
    expect(readViewMessage(letters[0]!.payload)).toEqual({
      views: [{ product_id: id(1), count: 5, viewers: ["11"] }],
      keyed: [],
      at: null,
    });
    expect(readViewMessage(letters[1]!.payload)).toEqual({
      views: [],
      keyed: [{ key, fp: "b".repeat(32), at: 1, views: [{ product_id: id(1), count: 2 }] }],
      at: null,
    });
  });

  test("a product with more viewers than a letter holds is split over letters; its count adds up", () => {
    const viewers = Array.from({ length: 30_000 }, (_, i) => String(1e15 + i));
    const batch: Batch = {
      slices: [slice(0, 0, 1, { counts: new Map([[id(1), 30_005]]), viewerIds: viewers.map(() => id(1)), viewers })],
      products: 1,
      views: 30_005,
    };
    const letters = setAsideLetters(batch, new Set([id(1)]), "r");
    expect(letters.length).toBeGreaterThan(1);
    let count = 0;
    const seen: string[] = [];
    for (const l of letters) {
      expect(l.payload!.length).toBeLessThan(512 * 1024);
      const read = readViewMessage(l.payload);
      if ("error" in read) throw new Error(read.error);
      for (const e of read.views) {
        count += e.count;
        seen.push(...(e.viewers ?? []));
      }
    }
    expect(count).toBe(30_005);
    expect(seen).toEqual(viewers);
  });
});
