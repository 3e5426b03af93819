import { describe, expect, test } from "bun:test";
import { createGapTracker } from "../../../src/worker/gaps.ts";
import { offsetProblem } from "../../../src/worker/offset-check.ts";

describe("gap tracker", () => {
  test("the first gap seeks at once; more late messages do not seek again within the retry interval", () => {
    const g = createGapTracker(1000);
    expect(g.onGap(3, 100, 0)).toBe(true);
    expect(g.onGap(3, 100, 10)).toBe(false);
    expect(g.onGap(3, 100, 1001)).toBe(true);
  });

  test("an open gap is retried by time alone, even when nothing more arrives", () => {
    const g = createGapTracker(1000);
    g.onGap(1, 7, 0);
    expect(g.due(500)).toEqual([]);
    expect(g.due(1000)).toEqual([{ partition: 1, expected: 7 }]);
    expect(g.due(1500)).toEqual([]);
    expect(g.due(2000)).toEqual([{ partition: 1, expected: 7 }]);
  });

  test("a gap with a new expected offset seeks at once; a closed gap is forgotten", () => {
    const g = createGapTracker(1000);
    g.onGap(1, 7, 0);
    expect(g.onGap(1, 9, 1)).toBe(true);
    g.clear(1);
    expect(g.open()).toEqual([]);
    expect(g.due(10_000)).toEqual([]);
  });
});

describe("stored offsets against the log", () => {
  test("a stored offset beyond the log end is a reset; below the log start, a truncation; inside, fine", () => {
    expect(offsetProblem(0, 500, { low: 0, high: 20 })).toEqual({ kind: "log_reset", partition: 0, stored: 500, low: 0, high: 20 });
    expect(offsetProblem(0, 5, { low: 10, high: 20 })).toMatchObject({ kind: "log_truncated" });
    expect(offsetProblem(0, 20, { low: 0, high: 20 })).toBeNull();
    expect(offsetProblem(0, 10, { low: 10, high: 20 })).toBeNull();
    expect(offsetProblem(0, -1, { low: 10, high: 20 })).toBeNull();
    expect(offsetProblem(0, 500, undefined)).toBeNull();
  });
});
