import { describe, expect, test } from "bun:test";
import { createLogger } from "../../../src/log.ts";
import { createCoalescer, type Batch } from "../../../src/worker/coalescer.ts";
import { startFlusher } from "../../../src/worker/flusher.ts";
import { until } from "../until.ts";

const log = createLogger("silent", "test");
const id = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

describe("flusher", () => {
  test("a write that never settles is abandoned at its deadline and the same batch is written again", async () => {
    // The driver can leave a call pending forever when Postgres restarts (postgres.js 3.4.9): the flusher must
    // not wait on it, or the worker stops applying anything without a word.
    const coalescer = createCoalescer();
    coalescer.setBase(0, 0);
    coalescer.add(0, 0, [{ product_id: id(1), count: 3 }]);
    const seen: Batch[] = [];
    const failures: string[] = [];
    const flusher = startFlusher({
      coalescer,
      write(batch) {
        seen.push(batch);
        return seen.length === 1 ? new Promise<void>(() => {}) : Promise.resolve();
      },
      intervalMs: 5,
      timeoutMs: 50,
      log,
      onFailure: (err) => void failures.push(String(err)),
    });
    try {
      await until("a second write", () => seen.length >= 2);
      expect(seen[1]).toBe(seen[0]!); // the very same batch: same base, same offsets, same counts
      expect(failures[0]).toContain("did not settle within 50 ms");
      expect(seen[0]!.slices[0]).toMatchObject({ partition: 0, base: 0, next: 1, views: 3 });
    } finally {
      await flusher.stop(1);
    }
  });

  test("stop() ends even when every write hangs, reporting what it could not write", async () => {
    const coalescer = createCoalescer();
    coalescer.setBase(0, 0);
    coalescer.add(0, 0, [{ product_id: id(2), count: 1 }]);
    const flusher = startFlusher({
      coalescer,
      write: () => new Promise<void>(() => {}),
      intervalMs: 5,
      timeoutMs: 20,
      log,
      onFailure: () => {},
    });
    const stopped = await Promise.race([flusher.stop(2), Bun.sleep(10_000).then(() => "hung" as const)]);
    expect(stopped).toEqual({ pending: 1 });
  });
});
