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
  const A = "11111111-1111-4111-8111-111111111111";
  const B = "22222222-2222-4222-8222-222222222222";
  const at = (next: number, topicId: string | null = A) => ({ next, topicId });

  test("offsets stored for another topic id are a changed topic, whatever the numbers say", () => {
    expect(offsetProblem(0, at(5), B, { low: 0, high: 20 })).toMatchObject({ kind: "topic_changed", storedTopicId: A, topicId: B });
  });

  test("a stored offset beyond the log end is a reset; below the log start, a truncation; inside, fine", () => {
    expect(offsetProblem(0, at(500), A, { low: 0, high: 20 })).toMatchObject({ kind: "log_reset", stored: 500, low: 0, high: 20 });
    expect(offsetProblem(0, at(5), A, { low: 10, high: 20 })).toMatchObject({ kind: "log_truncated" });
    expect(offsetProblem(0, at(20), A, { low: 0, high: 20 })).toBeNull();
    expect(offsetProblem(0, at(10), A, { low: 10, high: 20 })).toBeNull();
  });

  test("nothing stored, or no id recorded yet (rows from before topic ids), is not a problem by itself", () => {
    expect(offsetProblem(0, at(-1), B, { low: 10, high: 20 })).toBeNull();
    expect(offsetProblem(0, at(5, null), B, { low: 0, high: 20 })).toBeNull();
    expect(offsetProblem(0, at(500), A, undefined)).toBeNull();
  });
});
