import { describe, expect, test } from "bun:test";
import { createIdSet } from "../../../src/ingest/id-set.ts";
import { seededRandom as rng } from "../seeded.ts";

function uuids(n: number, next: () => number): string[] {
  const hex = (k: number) => Array.from({ length: k }, () => Math.floor(next() * 16).toString(16)).join("");
  return Array.from({ length: n }, () => `${hex(8)}-${hex(4)}-4${hex(3)}-8${hex(3)}-${hex(12)}`);
}

const A = "3f2b8c1e-6d7a-4e1b-9c3d-2a1f0e9b8c7d";
const NIL = "00000000-0000-0000-0000-000000000000";

describe("set of known product ids", () => {
  test("holds the ids added, in either case, and nothing else", () => {
    const s = createIdSet(10);
    expect(s.has(A)).toBe(false);
    expect(s.add(A)).toBe(true);
    expect(s.has(A)).toBe(true);
    expect(s.has(A.toUpperCase())).toBe(true);
    expect(s.has(A.replace("7d", "7e"))).toBe(false);
    expect(s.add(A.toUpperCase())).toBe(true);
    expect(s.size).toBe(1);
  });

  test("does not hold what is not a UUID, so such an id is never taken for a known one", () => {
    const s = createIdSet(10);
    for (const bad of ["", "x", `${A}0`, A.replace(/-/g, "_"), A.replace("3", "g"), `{${A.slice(1)}`]) {
      expect(s.add(bad)).toBe(false);
      expect(s.has(bad)).toBe(false);
    }
    expect(s.size).toBe(0);
  });

  test("the nil UUID is held like any other id, though its bits mark an empty slot", () => {
    const s = createIdSet(2);
    expect(s.has(NIL)).toBe(false);
    s.add(NIL);
    expect(s.has(NIL)).toBe(true);
    s.add(A);
    s.add(A.replace("7d", "7e"));
    expect(s.has(NIL)).toBe(false);
    expect(s.has(A)).toBe(true);
    expect(s.size).toBe(2);
  });

  test("once full, the oldest id is evicted first; adding a held id again changes nothing", () => {
    const [a, b, c, d] = uuids(4, rng(1));
    const s = createIdSet(3);
    s.add(a!);
    s.add(b!);
    s.add(c!);
    s.add(a!);
    s.add(d!);
    expect([a, b, c, d].map((x) => s.has(x!))).toEqual([false, true, true, true]);
    expect(s.size).toBe(3);
  });

  test("agrees with a Set and a queue over 200 000 seeded adds and lookups, through growth and eviction", () => {
    const next = rng(42);
    const universe = uuids(6000, next);
    const maxSize = 1500;
    const s = createIdSet(maxSize);
    const model = new Set<string>();
    const queue: string[] = [];
    for (let i = 0; i < 200_000; i++) {
      const id = universe[Math.floor(next() * universe.length)]!;
      if (next() < 0.5) {
        s.add(id);
        if (!model.has(id)) {
          if (model.size === maxSize) model.delete(queue.shift()!);
          model.add(id);
          queue.push(id);
        }
      }
      const probe = universe[Math.floor(next() * universe.length)]!;
      if (s.has(probe) !== model.has(probe)) throw new Error(`step ${i}: has(${probe}) = ${s.has(probe)}, expected ${model.has(probe)}`);
    }
    expect(s.size).toBe(model.size);
    expect(universe.filter((id) => s.has(id))).toEqual(universe.filter((id) => model.has(id)));
  });
});
