import { limitedLog, type Logger } from "../log.ts";
import type { Counter } from "../metrics.ts";
import { type Lane, safeInFlight } from "./lane-cycle.ts";

/** A lane whose batches failed this many times in a row gets a new producer. */
export const LANE_FAILURES_BEFORE_RENEW = 3;
const RENEW_LOG_MS = 5000;

export interface LaneSlot {
  producer: Lane;
  /** Batches that failed in a row on this lane's producer, across runs of the lane. */
  failuresInRow: number;
}

/**
 * The lanes not sending right now, and the renewal of a lane's producer after a batch. A producer can fail for good
 * while Kafka is fine (librdkafka's idempotent producer raises fatal errors after some broker restarts, and then
 * refuses every message); a fresh producer costs one connection, so a lane whose batches keep failing gets one, as
 * does a lane whose producer cannot be trusted (`retire` from its cycle).
 */
export function createLanes(count: number, newLane: () => Lane, renewed: Counter, log: Logger) {
  const idle: LaneSlot[] = Array.from({ length: count }, () => ({ producer: newLane(), failuresInRow: 0 }));
  // An outage renews lanes every few windows: one line per RENEW_LOG_MS, with how many it stands for.
  const renewLog = limitedLog(log, RENEW_LOG_MS);

  function renew(lane: LaneSlot, reason: string) {
    renewed.inc({ reason });
    renewLog("warn", { reason, inFlight: safeInFlight(lane.producer) }, "renewing a producer lane");
    try {
      const old = lane.producer;
      lane.producer = newLane();
      old.close?.();
    } catch (err) {
      // Creating a producer does not touch the network; if it fails anyway, the lane keeps its old one.
      log.error({ err }, "could not create a producer for a lane; it keeps its old one");
    }
    lane.failuresInRow = 0;
  }

  return {
    idle,
    /** The lane is free again, with a new producer if its batch says so. */
    release(lane: LaneSlot, failed: boolean, retire: string | null) {
      lane.failuresInRow = failed ? lane.failuresInRow + 1 : 0;
      const reason = retire ?? (lane.failuresInRow >= LANE_FAILURES_BEFORE_RENEW ? "failing in a row" : null);
      if (reason) renew(lane, reason);
      idle.push(lane);
    },
    /** Lanes still sending keep their producer: a wedged one's process is about to end anyway. */
    closeIdle() {
      for (const lane of idle) lane.producer.close?.();
    },
  };
}
