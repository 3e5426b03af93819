// A partition that sits still: messages exist beyond what has been read and counted, yet the read position has
// not moved for `stallMs` while fetching was not paused on purpose. Whatever the cause (a fetch position
// librdkafka never resumes after a broker restart, a consumer that lost its assignment and never got it back),
// the worker must not wait on it silently. What it does about it (consumer.ts) escalates with each report of
// the same stall: a seek first, then a new Kafka consumer; see stallResponse.

export interface PartitionPosition {
  partition: number;
  /** How far the partition is read and counted: the coalescer's next offset, else the stored one. */
  position: number;
  /** The log end offset (high watermark). */
  logEnd: number;
}

export interface Stall {
  partition: number;
  /** The position it sits at (where a seek sends the consumer back to). */
  position: number;
  /** How many `stallMs` windows in a row it has sat still: 1 on the first report. */
  strikes: number;
}

export interface StallDetector {
  /** Feeds one observation; returns the partitions that completed another `stallMs` window sitting still. */
  observe(now: number, positions: readonly PartitionPosition[], paused: boolean): Stall[];
  reset(): void;
}

export function createStallDetector(stallMs: number): StallDetector {
  const last = new Map<number, { position: number; since: number; strikes: number }>();
  return {
    observe(now, positions, paused) {
      const stalled: Stall[] = [];
      for (const { partition, position, logEnd } of positions) {
        const seen = last.get(partition);
        // Caught up, moving, or paused on purpose (a flush backlog): not a stall; the clock starts again.
        if (logEnd <= position || !seen || seen.position !== position || paused) {
          last.set(partition, { position, since: now, strikes: 0 });
          continue;
        }
        if (now - seen.since >= stallMs) {
          seen.strikes++;
          seen.since = now;
          stalled.push({ partition, position, strikes: seen.strikes });
        }
      }
      return stalled;
    },
    reset: () => last.clear(),
  };
}

/** Windows a partition held by another consumer of the group may sit still before this worker steps in. */
export const NOT_MINE_STRIKES = 3;

/**
 * What one worker does about a stall, given the partitions librdkafka says its consumer holds (null: it cannot
 * say). Every worker sees every partition's position (Postgres and the log are shared), but only the holder can
 * fetch it, and a new consumer makes the whole group rebalance. So:
 * - the holder seeks back first (cheap, local) and replaces its consumer only if that did not help;
 * - a consumer that holds nothing at all has lost its assignment (librdkafka can, after a Kafka stop); it
 *   replaces its consumer at the first window;
 * - a consumer holding other partitions leaves it to the holder, and steps in (its rejoin makes the group
 *   assign afresh) only after NOT_MINE_STRIKES windows.
 * Not every worker at every window: each replacement restarts the group's rebalance, so workers replacing in turn can
 * keep partitions unread for minutes.
 */
export function stallResponse(stall: Stall, holding: readonly number[] | null): "seek" | "replace" | "wait" {
  if (holding?.includes(stall.partition)) return stall.strikes === 1 ? "seek" : "replace";
  // Null (librdkafka cannot say) counts as holding something: the cautious answer.
  if (holding?.length === 0) return "replace";
  return stall.strikes >= NOT_MINE_STRIKES ? "replace" : "wait";
}
