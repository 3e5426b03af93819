import { limitedLog, type Logger } from "../log.ts";
import type { ConsumerMetrics } from "./consumer-metrics.ts";
import type { OffsetStore } from "./offset-guard.ts";
import { createStallDetector, type PartitionPosition, type Stall, stallResponse } from "./stall.ts";

// Every few seconds, in the background: is any partition sitting still with messages to count? (stall.ts says what
// counts as a stall and which answer fits.) The check reads the log's watermarks and the stored offsets (the lag
// gauge comes from the same reads); the answer runs in the consume loop, which owns the consumer.

export interface StallWatchDeps {
  store: Pick<OffsetStore, "watermarks" | "loadOffsets">;
  /** Where the loop stands on a partition (coalescer.expected), and whether a partition is held (offset guard). */
  expected(partition: number): number | undefined;
  isHeld(partition: number): boolean;
  isPaused(): boolean;
  setLag(marks: Awaited<ReturnType<OffsetStore["watermarks"]>>, stored: Awaited<ReturnType<OffsetStore["loadOffsets"]>>): void;
  stallMs: number;
  checkMs: number;
  m: ConsumerMetrics;
  log: Logger;
}

/** What the loop does about a stall: its partitions, a seek, a new consumer, and what to log beside. */
export interface StallActions {
  assigned(): number[] | null;
  seek(partition: number, offset: number): void;
  replace(): Promise<void>;
  context(): Record<string, unknown>;
}

export function createStallWatch(deps: StallWatchDeps) {
  const stalls = createStallDetector(deps.stallMs);
  const waitLog = limitedLog(deps.log, 60_000);
  let lastCheck = performance.now();
  let checking: Promise<void> | null = null;
  let stalled: { found: Stall[]; positions: PartitionPosition[] } | null = null;

  function check(now: number) {
    if (checking || now - lastCheck < deps.checkMs) return;
    lastCheck = now;
    checking = (async () => {
      const marks = await deps.store.watermarks();
      const stored = await deps.store.loadOffsets([...marks.keys()]);
      deps.setLag(marks, stored);
      const positions: PartitionPosition[] = [];
      for (const [partition, w] of marks) {
        if (deps.isHeld(partition)) continue;
        const position = Math.max(deps.expected(partition) ?? -1, stored.get(partition)?.next ?? -1, w.low);
        positions.push({ partition, position, logEnd: w.high });
      }
      const found = stalls.observe(performance.now(), positions, deps.isPaused());
      if (found.length > 0) stalled = { found, positions };
    })()
      .catch((err) => deps.log.debug({ err }, "stall check skipped: cannot read the log's watermarks or the stored offsets"))
      .finally(() => (checking = null));
  }

  /** Answers the stalls the last check found, if any. */
  async function respond(act: StallActions) {
    if (!stalled) return;
    const { found, positions } = stalled;
    stalled = null;
    const mine = act.assigned();
    const responses = found.map((st) => ({ ...st, response: stallResponse(st, mine) }));
    for (const r of responses) deps.m.stalls.inc({ response: r.response });
    const context = { stalls: responses, assigned: mine, positions, ...act.context() };
    if (responses.some((r) => r.response === "replace")) {
      deps.log.error(context, "partitions sat still with messages to count; replacing the Kafka consumer");
      await act.replace();
      return;
    }
    const seeks = responses.filter((r) => r.response === "seek");
    if (seeks.length > 0) deps.log.warn(context, "partitions sat still with messages to count; seeking them back to their counted offset");
    else waitLog("warn", context, "partitions held by another consumer of the group sit still; left to it for now");
    for (const r of seeks) act.seek(r.partition, r.position);
  }

  return { check, respond, reset: () => stalls.reset() };
}
