import { describe, expect, test } from "bun:test";
import { orTimeout, withDeadline, within } from "../../src/deadline.ts";

const never = new Promise<never>(() => {});

describe("bounded waits", () => {
  test("withDeadline: true when the work settles in time (a failure too), false when it does not", async () => {
    expect(await withDeadline(Promise.resolve(1), 50)).toBe(true);
    expect(await withDeadline(Promise.reject(new Error("x")), 50)).toBe(true);
    expect(await withDeadline(never, 10)).toBe(false);
  });

  test("within: false past the deadline, the work's own failure rethrown", async () => {
    expect(await within(Promise.resolve(), 50)).toBe(true);
    expect(await within(never, 10)).toBe(false);
    await expect(within(Promise.reject(new Error("boom")), 50)).rejects.toThrow("boom");
  });

  test("orTimeout: the result, or the timeout's error; a failure after the deadline is nobody's", async () => {
    expect(await orTimeout(Promise.resolve(7), 50, () => new Error("late"))).toBe(7);
    await expect(orTimeout(never, 10, () => new Error("late"))).rejects.toThrow("late");
    const slowFailure = Bun.sleep(30).then(() => Promise.reject(new Error("after")));
    await expect(orTimeout(slowFailure, 5, () => new Error("late"))).rejects.toThrow("late");
    await Bun.sleep(40); // the late rejection must not surface as an unhandled one
  });
});
