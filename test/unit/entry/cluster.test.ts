import { expect, test } from "bun:test";
import { nextRestartDelay } from "../../../src/entry/cluster.ts";

test("a child that keeps dying young is restarted later and later, up to 30 s; one that ran a while starts over", () => {
  let d = 0;
  const delays: number[] = [];
  for (let i = 0; i < 10; i++) delays.push((d = nextRestartDelay(d, 50)));
  expect(delays).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000]);
  expect(nextRestartDelay(30_000, 60_000)).toBe(100);
});
