import { describe, expect, test } from "bun:test";
import { createKafkaCommits } from "../../../src/worker/kafka-commits.ts";

function recorder(intervalMs: number) {
  const calls: Array<[number, number]> = [];
  const c = createKafkaCommits((p, o) => calls.push([p, o]), intervalMs);
  return { c, calls };
}

describe("Kafka offset commits trailing the flushes", () => {
  test("the first flush commits at once; flushes within the interval are held back, then their newest offsets go in one round", () => {
    const { c, calls } = recorder(1000);
    c.flushed(0, 10, 0);
    expect(calls).toEqual([[0, 10]]);
    c.flushed(0, 20, 200);
    c.flushed(1, 5, 400);
    c.flushed(0, 30, 600);
    expect(calls).toEqual([[0, 10]]);
    c.flushed(1, 7, 1000);
    expect(calls).toEqual([
      [0, 10],
      [0, 30],
      [1, 7],
    ]);
  });

  test("an offset already committed is not committed again", () => {
    const { c, calls } = recorder(1000);
    c.flushed(0, 10, 0);
    c.flushed(0, 10, 5000);
    expect(calls).toEqual([[0, 10]]);
  });

  test("a forgotten partition's due offset is never committed, and it commits afresh once owned again", () => {
    const { c, calls } = recorder(1000);
    c.flushed(0, 10, 0);
    c.flushed(0, 20, 100);
    c.forget(0);
    c.flushed(1, 3, 2000);
    expect(calls).toEqual([
      [0, 10],
      [1, 3],
    ]);
    c.flushed(0, 10, 4000);
    expect(calls.at(-1)).toEqual([0, 10]);
  });

  test("on stop, what is due is committed whatever the interval", () => {
    const { c, calls } = recorder(60_000);
    c.flushed(0, 10, 0);
    c.flushed(0, 11, 1);
    c.flushed(2, 4, 2);
    c.commitDue();
    expect(calls).toEqual([
      [0, 10],
      [0, 11],
      [2, 4],
    ]);
    c.commitDue();
    expect(calls.length).toBe(3);
  });
});
