import { describe, expect, test } from "bun:test";
import { NO_MINUTE } from "../../../src/db/flush.ts";
import { NO_OFFSET } from "../../../src/db/offsets.ts";
import { createCoalescer } from "../../../src/worker/coalescer.ts";

const A = "00000000-0000-4000-8000-00000000000a";
const B = "00000000-0000-4000-8000-00000000000b";
const view = (id: string, count = 1) => [{ product_id: id, count }];

describe("coalescer", () => {
  test("holds unkeyed views by the minute the API accepted them as well as per product; no time: NO_MINUTE", () => {
    const c = createCoalescer();
    c.setBase(0, 0);
    const T = Date.UTC(2026, 11, 7, 10, 0, 0);
    c.add(0, 0, view(A, 2), [], T - 1);
    c.add(0, 1, view(A, 3), [], T);
    c.add(0, 2, view(B, 4), [], T + 59_999);
    c.add(0, 3, view(A, 1));
    const [slice] = c.take()!.slices;
    expect(slice!.counts).toEqual(
      new Map([
        [A, 6],
        [B, 4],
      ]),
    );
    expect(slice!.minutes).toEqual(
      new Map([
        [T / 60_000 - 1, new Map([[A, 2]])],
        [
          T / 60_000,
          new Map([
            [A, 3],
            [B, 4],
          ]),
        ],
        [NO_MINUTE, new Map([[A, 1]])],
      ]),
    );
  });

  test("says when a message's views cannot be held exactly: no pending sum may pass 2^53", () => {
    const c = createCoalescer();
    c.setBase(0, 0);
    const big = 4e15;
    expect(c.fits(0, view(A, big))).toBe(true);
    c.add(0, 0, view(A, big));
    c.add(0, 1, view(B, big));
    expect(c.fits(0, view(A, 1))).toBe(true);
    expect(c.fits(0, view(A, big))).toBe(false); // the partition's views would pass 2^53
    expect(c.fits(0, [], [{ key: "0".repeat(32), fp: "1".repeat(32), views: view(B, big) }])).toBe(false);
    c.take();
    expect(c.fits(0, view(A, big))).toBe(true); // a new slice starts from nothing
    expect(c.fits(0, view(A, Number.MAX_SAFE_INTEGER + 2))).toBe(false);
  });

  test("keeps public views' viewers per product, keyed requests' too, and counts them toward its size", () => {
    const c = createCoalescer();
    c.setBase(0, 0);
    c.add(0, 0, [
      { product_id: A, count: 2, viewers: ["1", "-2"] },
      { product_id: B, count: 3 },
    ]);
    c.add(0, 1, [], [{ key: "0".repeat(32), fp: "1".repeat(32), views: [{ product_id: B, count: 1, viewers: ["7"] }] }]);
    expect(c.size()).toBe(2 + 2 + 1 + 1);
    const slice = c.take()!.slices[0]!;
    expect(slice.viewerIds).toEqual([A, A, B]);
    expect(slice.viewers).toEqual(["1", "-2", "7"]);
    expect(c.size()).toBe(0);
  });

  test("sums views per product and records the offsets they cover", () => {
    const c = createCoalescer();
    c.setBase(0, 10);
    expect(c.add(0, 10, view(A))).toBe("counted");
    expect(c.add(0, 11, view(A, 4))).toBe("counted");
    expect(c.add(0, 12, view(B))).toBe("counted");
    expect(c.size()).toBe(2);
    const batch = c.take()!;
    expect(batch.views).toBe(6);
    expect(batch.slices).toHaveLength(1);
    expect(batch.slices[0]).toMatchObject({ partition: 0, base: 10, next: 13 });
    expect(Object.fromEntries(batch.slices[0]!.counts)).toEqual({ [A]: 5, [B]: 1 });
    expect(c.size()).toBe(0);
  });

  test("keyed requests are kept apart, in offset order, for the writer to count once per key", () => {
    const c = createCoalescer();
    c.setBase(0, 0);
    const k1 = { key: "1".repeat(32), fp: "f".repeat(32), views: [{ product_id: A, count: 2 }] };
    const k2 = {
      key: "2".repeat(32),
      fp: "f".repeat(32),
      views: [
        { product_id: A, count: 1 },
        { product_id: B, count: 1 },
      ],
    };
    expect(c.add(0, 0, view(A), [k1])).toBe("counted");
    expect(c.add(0, 1, [], [k2, k1])).toBe("counted");
    expect(c.size()).toBe(1 + 1 + 2 + 1);
    const batch = c.take()!;
    expect(batch.views).toBe(1 + 2 + 2 + 2);
    expect(batch.slices[0]!.keyed).toEqual([k1, k2, k1]);
    expect(Object.fromEntries(batch.slices[0]!.counts)).toEqual({ [A]: 1 });
    c.drop(0);
    expect(c.size()).toBe(0);
  });

  test("skips messages below the stored offset (replays after a crash count once)", () => {
    const c = createCoalescer();
    c.setBase(3, 100);
    expect(c.add(3, 98, view(A))).toBe("duplicate");
    expect(c.add(3, 99, view(A))).toBe("duplicate");
    expect(c.add(3, 100, view(A))).toBe("counted");
    expect(c.add(3, 100, view(A))).toBe("duplicate");
    expect(c.take()!.views).toBe(1);
  });

  test("holds back a message that skips ahead of the expected offset", () => {
    const c = createCoalescer();
    c.setBase(1, 50);
    expect(c.add(1, 60, view(A))).toBe("gap");
    expect(c.add(1, 50, view(A))).toBe("counted");
    expect(c.take()!.slices[0]).toMatchObject({ base: 50, next: 51 });
  });

  test("with nothing stored, the first message sets the start", () => {
    const c = createCoalescer();
    c.setBase(2, NO_OFFSET);
    expect(c.add(2, 7, view(A))).toBe("counted");
    expect(c.take()!.slices[0]).toMatchObject({ base: NO_OFFSET, next: 8 });
  });

  test("a malformed message moves the offset but counts nothing", () => {
    const c = createCoalescer();
    c.setBase(0, 0);
    expect(c.add(0, 0, null)).toBe("malformed");
    const batch = c.take()!;
    expect(batch.views).toBe(0);
    expect(batch.slices[0]).toMatchObject({ next: 1 });
    expect(batch.slices[0]!.counts.size).toBe(0);
  });

  test("the next slice starts where the taken one ended", () => {
    const c = createCoalescer();
    c.setBase(0, 0);
    c.add(0, 0, view(A));
    c.take();
    c.add(0, 1, view(A));
    expect(c.take()!.slices[0]).toMatchObject({ base: 1, next: 2 });
    expect(c.take()).toBeNull();
  });

  test("messages of a partition without a base are not counted", () => {
    const c = createCoalescer();
    expect(c.add(4, 0, view(A))).toBe("unknown_partition");
    expect(c.take()).toBeNull();
  });

  test("dropping a partition forgets its pending views and its base", () => {
    const c = createCoalescer();
    c.setBase(0, 0);
    c.setBase(1, 0);
    c.add(0, 0, view(A));
    c.add(1, 0, view(B));
    c.drop(0);
    expect(c.size()).toBe(1);
    expect(c.hasBase(0)).toBe(false);
    expect(c.take()!.slices.map((s) => s.partition)).toEqual([1]);
  });
});
