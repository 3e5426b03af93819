import { describe, expect, test } from "bun:test";
import type { Product } from "../../../src/domain/product.ts";
import { parseFlush } from "../../../src/db/flush-channel.ts";
import { byRank, mergeNotice, needsFullRead, topOf } from "../../../src/ranking/top-merge.ts";

const id = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const product = (n: number, view_count: number): Product => ({
  id: id(n),
  name: `p${n}`,
  description: "",
  view_count,
  unique_viewers: 0,
  created_at: "",
  updated_at: "",
});

describe("top-N kept from flushes' changed rows", () => {
  test("old top merged with each flush's notice, or re-read with its named rows, equals a full ranking after every flush (seeded, 600 flushes)", () => {
    // A fixed seed: the same sequence every run. Small counts make ties (ordered by id) frequent.
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const N = 500;
    const K = 20;
    const counts = Array.from({ length: N }, () => 1 + Math.floor(rand() * 3));
    const table = () => counts.map((c, n) => product(n, c));
    let top = topOf(table(), K);
    let inMemory = 0;
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
      // What the API does: merge the notice in memory, or re-read its old top and the named ones.
      const notice = { at: flush, items: named.map((pid) => ({ id: pid, count: counts[Number.parseInt(pid.slice(24), 16)]! })) };
      const merged = mergeNotice(top, notice, K);
      if (merged) {
        inMemory++;
        top = merged;
      } else {
        const reread = new Set([...top.map((p) => p.id), ...named]);
        top = topOf(
          [...reread].map((pid) => product(Number.parseInt(pid.slice(24), 16), counts[Number.parseInt(pid.slice(24), 16)]!)),
          K,
        );
      }
      expect(top.map((p) => `${p.id}:${p.view_count}`)).toEqual(topOf(table(), K).map((p) => `${p.id}:${p.view_count}`));
    }
    // Both paths were taken many times (the seed fixes how many).
    expect(inMemory).toBeGreaterThan(50);
    expect(inMemory).toBeLessThan(550);
  }, 60_000);

  test("by unique viewers: only products with viewers are listed, and merges or partial reads equal a full ranking (seeded, 600 flushes)", () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const N = 500;
    const K = 20;
    const uv = Array.from({ length: N }, () => 0);
    const row = (n: number): Product => ({ ...product(n, 1000), unique_viewers: uv[n]! });
    const full = () =>
      topOf(
        uv.map((_, n) => row(n)),
        K,
        "unique_viewers",
      );
    let top = full();
    expect(top).toEqual([]);
    let inMemory = 0;
    for (let flush = 0; flush < 600; flush++) {
      const changed = new Set<number>();
      const size = 1 + Math.floor(rand() * 8);
      for (let i = 0; i < size; i++) {
        const n = Math.floor(N * rand() ** 2);
        uv[n]! += 1 + Math.floor(rand() * 2);
        changed.add(n);
      }
      const named = topOf([...changed].map(row), K, "unique_viewers");
      const notice = { at: flush, items: named.map((p) => ({ id: p.id, count: p.unique_viewers })) };
      const merged = mergeNotice(top, notice, K, "unique_viewers");
      if (merged) {
        inMemory++;
        top = merged;
      } else {
        const reread = new Set([...top.map((p) => p.id), ...named.map((p) => p.id)]);
        top = topOf(
          [...reread].map((pid) => row(Number.parseInt(pid.slice(24), 16))),
          K,
          "unique_viewers",
        );
      }
      expect(top.map((p) => `${p.id}:${p.unique_viewers}`)).toEqual(full().map((p) => `${p.id}:${p.unique_viewers}`));
    }
    expect(top).toHaveLength(K);
    expect(inMemory).toBeGreaterThan(50);
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

  test("a NOTIFY payload names products with their counts, and the flush's time when a flush sent it; anything else asks for a full read", () => {
    expect(parseFlush(`at=1765040000123;${id(1)}:5,${id(2)}:10`)).toEqual({
      at: 1765040000123,
      items: [
        { id: id(1), count: 5 },
        { id: id(2), count: 10 },
      ],
    });
    expect(parseFlush(`${id(1)}:5`)).toEqual({ at: null, items: [{ id: id(1), count: 5 }] });
    expect(parseFlush("")).toEqual({ at: null, items: [] });
    expect(parseFlush("at=5;")).toEqual({ at: 5, items: [] });
    for (const bad of ["garbage", `${id(1)}:5,nope:1`, `${id(1)}:x`, `${id(1)}`, "at=;", "at=12", `at=-1;${id(1)}:5`]) {
      expect(parseFlush(bad)).toBeNull();
    }
  });

  test("a notice updates the listed products it names in memory, count and updated_at; one that could enter the list needs a read", () => {
    const top = [product(1, 9), product(2, 7), product(3, 5)];
    const at = Date.UTC(2026, 11, 6, 18, 0, 0, 123);
    const merged = mergeNotice(top, { at, items: [{ id: id(3), count: 8 }] }, 3)!;
    expect(merged.map((p) => [p.id, p.view_count])).toEqual([
      [id(1), 9],
      [id(3), 8],
      [id(2), 7],
    ]);
    expect(merged[1]!.updated_at).toBe("2026-12-06T18:00:00.123Z");
    expect(merged[1]!.name).toBe("p3");
    // Not listed and below the last listed one: it cannot enter, nothing to read.
    expect(mergeNotice(top, { at, items: [{ id: id(9), count: 4 }] }, 3)).toEqual(top);
    // Not listed and above the last: only a read can say what it is.
    expect(mergeNotice(top, { at, items: [{ id: id(9), count: 6 }] }, 3)).toBeNull();
    // An older count than listed (a read that raced the notice) changes nothing.
    expect(mergeNotice(top, { at, items: [{ id: id(1), count: 8 }] }, 3)).toEqual(top);
    // No time, or a list that can take inserts: read.
    expect(mergeNotice(top, { at: null, items: [{ id: id(3), count: 8 }] }, 3)).toBeNull();
    expect(mergeNotice(top.slice(0, 2), { at, items: [] }, 3)).toBeNull();
  });

  test("a top list that is not full, or ends in products without views, is read whole (inserts can enter it)", () => {
    const full = Array.from({ length: 3 }, (_, i) => product(i, 10 - i));
    expect(needsFullRead(full, 3)).toBe(false);
    expect(needsFullRead(full.slice(0, 2), 3)).toBe(true);
    expect(needsFullRead([...full.slice(0, 2), product(9, 0)], 3)).toBe(true);
    expect(needsFullRead([], 3)).toBe(true);
  });
});
