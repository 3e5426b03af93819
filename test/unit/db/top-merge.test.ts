import { describe, expect, test } from "bun:test";
import type { Product } from "../../../src/domain/product.ts";
import { parseChanged } from "../../../src/db/flush-channel.ts";
import { byRank, needsFullRead, topOf } from "../../../src/db/top-merge.ts";

const id = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const product = (n: number, view_count: number): Product => ({
  id: id(n),
  name: `p${n}`,
  description: "",
  view_count,
  created_at: "",
  updated_at: "",
});

describe("top-N kept from flushes' changed rows", () => {
  test("old top plus each flush's top changed rows equals a full ranking after every flush (seeded, 600 flushes)", () => {
    // A fixed seed: the same sequence every run. Small counts make ties (ordered by id) frequent.
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const N = 500;
    const K = 20;
    const counts = Array.from({ length: N }, () => 1 + Math.floor(rand() * 3));
    const table = () => counts.map((c, n) => product(n, c));
    let top = topOf(table(), K);
    for (let flush = 0; flush < 600; flush++) {
      // One flush: a few products gain views, mostly the low-numbered ones (a Zipf-like skew).
      const changed = new Set<number>();
      const size = 1 + Math.floor(rand() * 60);
      for (let i = 0; i < size; i++) {
        const n = Math.floor(N * rand() ** 3);
        counts[n]! += 1 + Math.floor(rand() * 2);
        changed.add(n);
      }
      // What the worker's NOTIFY names: the top K of the changed rows, as they are after the flush.
      const named = topOf(
        [...changed].map((n) => product(n, counts[n]!)),
        K,
      ).map((p) => p.id);
      // What the API re-reads: its old top and the named ones, with their counts now.
      const reread = new Set([...top.map((p) => p.id), ...named]);
      top = topOf(
        [...reread].map((pid) => product(Number.parseInt(pid.slice(24), 16), counts[Number.parseInt(pid.slice(24), 16)]!)),
        K,
      );
      expect(top.map((p) => `${p.id}:${p.view_count}`)).toEqual(topOf(table(), K).map((p) => `${p.id}:${p.view_count}`));
    }
  }, 60_000);

  test("ranks by view_count, then id; a product listed twice keeps its higher count", () => {
    const rows = [product(3, 5), product(1, 5), product(2, 9), product(1, 7)];
    expect(topOf(rows, 3).map((p) => [p.id, p.view_count])).toEqual([
      [id(2), 9],
      [id(1), 7],
      [id(3), 5],
    ]);
    expect([product(2, 1), product(1, 1)].sort(byRank).map((p) => p.id)).toEqual([id(1), id(2)]);
  });

  test("a NOTIFY payload names products; anything else asks for a full read", () => {
    expect(parseChanged(`${id(1)}:5,${id(2)}:10`)).toEqual([id(1), id(2)]);
    expect(parseChanged("")).toEqual([]);
    expect(parseChanged("garbage")).toBeNull();
    expect(parseChanged(`${id(1)}:5,nope:1`)).toBeNull();
  });

  test("a top list that is not full, or ends in products without views, is read whole (inserts can enter it)", () => {
    const full = Array.from({ length: 3 }, (_, i) => product(i, 10 - i));
    expect(needsFullRead(full, 3)).toBe(false);
    expect(needsFullRead(full.slice(0, 2), 3)).toBe(true);
    expect(needsFullRead([...full.slice(0, 2), product(9, 0)], 3)).toBe(true);
    expect(needsFullRead([], 3)).toBe(true);
  });
});
