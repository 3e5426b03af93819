// A partition that sits still: messages exist beyond what has been read and counted, yet the read position has
// not moved for `stallMs` while fetching was not paused on purpose. Whatever the cause (a consumer that lost
// its assignment and never got it back after a broker restart, a fetch position librdkafka never resumes), the
// worker must not wait on it silently: the consumer reports it and replaces its Kafka consumer, which rejoins
// the group and starts again from the offsets Postgres holds.

export interface PartitionPosition {
  partition: number;
  /** How far the partition is read and counted: the coalescer's next offset, else the stored one. */
  position: number;
  /** The log end offset (high watermark). */
  logEnd: number;
}

export interface StallDetector {
  /** Feeds one observation; returns the partitions stalled for `stallMs` (each reported once per stall). */
  observe(now: number, positions: readonly PartitionPosition[], paused: boolean): number[];
  reset(): void;
}

export function createStallDetector(stallMs: number): StallDetector {
  const last = new Map<number, { position: number; since: number }>();
  return {
    observe(now, positions, paused) {
      const stalled: number[] = [];
      for (const { partition, position, logEnd } of positions) {
        const seen = last.get(partition);
        // Caught up, moving, or paused on purpose (a flush backlog): not a stall; the clock starts again.
        if (logEnd <= position || !seen || seen.position !== position || paused) {
          last.set(partition, { position, since: now });
          continue;
        }
        if (now - seen.since >= stallMs) {
          stalled.push(partition);
          seen.since = now;
        }
      }
      return stalled;
    },
    reset: () => last.clear(),
  };
}
