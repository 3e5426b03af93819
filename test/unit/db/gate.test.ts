import { describe, expect, test } from "bun:test";
import { AppError } from "../../../src/errors.ts";
import { createGate, sharedCheck } from "../../../src/db/gate.ts";

describe("read gate", () => {
  test("at most maxInFlight run, maxQueued wait, and the rest are refused at once with a retryable 503 code", async () => {
    const gate = createGate(2, 3);
    let running = 0;
    let most = 0;
    const releases: (() => void)[] = [];
    const work = () =>
      new Promise<number>((resolve) => {
        running++;
        most = Math.max(most, running);
        releases.push(() => {
          running--;
          resolve(1);
        });
      });
    const admitted = Array.from({ length: 5 }, () => gate(work));
    const refused = await gate(work).catch((e) => e);
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ code: "database_unavailable", retryable: true });
    while (releases.length > 0 || running > 0) {
      releases.shift()?.();
      await Bun.sleep(0);
    }
    expect(await Promise.all(admitted)).toEqual([1, 1, 1, 1, 1]);
    expect(most).toBe(2);
  });
});

describe("shared check", () => {
  test("concurrent callers share one run; its answer serves later calls until everyMs after it settled", async () => {
    let runs = 0;
    let now = 0;
    const check = sharedCheck(async () => {
      runs++;
      await Bun.sleep(5);
      return runs;
    }, 50);
    expect(await Promise.all([check(), check(), check()])).toEqual([1, 1, 1]);
    expect(await check()).toBe(1);
    expect(runs).toBe(1);
    const t0 = performance.now();
    while (performance.now() - t0 <= 60) await Bun.sleep(10);
    now = await check();
    expect(now).toBe(2);
  });
});
