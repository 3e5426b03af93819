import { describe, expect, test } from "bun:test";
import { createLogger } from "../../../src/log.ts";
import { Registry } from "../../../src/metrics.ts";
import { startKeyExpiry } from "../../../src/worker/key-expiry.ts";
import { until } from "../until.ts";

describe("key expiry", () => {
  test("deletes in bounded rounds until a round comes back short, and counts what it deleted", async () => {
    const backlog = [1000, 1000, 400];
    const calls: number[] = [];
    const metrics = new Registry();
    const expiry = startKeyExpiry({
      expire: async (limit) => {
        calls.push(limit);
        return backlog.shift() ?? 0;
      },
      intervalMs: 5,
      log: createLogger("silent", "test"),
      metrics,
      limit: 1000,
    });
    await until("four rounds", () => calls.length >= 4);
    await expiry.stop();
    expect(calls.slice(0, 3)).toEqual([1000, 1000, 1000]);
    expect(metrics.render()).toContain("worker_idempotency_keys_expired_total 2400");
  });

  test("a failing database is logged once per outage, retried every interval, and stop() still returns", async () => {
    const lines: string[] = [];
    let failing = true;
    let calls = 0;
    const log = createLogger("silent", "test");
    const spy = { ...log, warn: (_: unknown, msg: string) => void lines.push(msg), info: (msg: string) => void lines.push(msg) } as never;
    const expiry = startKeyExpiry({
      expire: async () => {
        calls++;
        if (failing) throw new Error("connection refused");
        return 0;
      },
      intervalMs: 5,
      log: spy,
      metrics: new Registry(),
    });
    await until("five failed rounds", () => calls >= 5);
    failing = false;
    await until("the recovery line", () => lines.length >= 2);
    await expiry.stop();
    expect(lines).toEqual([
      "could not delete expired Idempotency-Key records; retrying every interval",
      "expired Idempotency-Key records are deleted again",
    ]);
  });
});
