// A gap: a message arrived above the offset the coalescer expects next for its partition (the fetch position
// moved on without us: a message fetched before a rebalance, a fence, a failed seek). Counting it would skip
// the ones in between, so the partition is sought back to the expected offset; until a message at that
// offset is counted, the seek is retried every `retryMs` (a seek fails while the partition is being moved),
// even when nothing more arrives. A partition is never left sitting still.

export interface GapTracker {
  /** Records a gap; true when a seek should be issued now. */
  onGap(partition: number, expected: number, now: number): boolean;
  /** The expected offset arrived (or the partition went away): the gap is closed. */
  clear(partition: number): void;
  /** Gaps whose last seek is older than the retry interval, marked as sought at `now`. */
  due(now: number): Array<{ partition: number; expected: number }>;
  open(): number[];
}

export function createGapTracker(retryMs = 1000): GapTracker {
  const gaps = new Map<number, { expected: number; soughtAt: number }>();
  return {
    onGap(partition, expected, now) {
      const g = gaps.get(partition);
      if (g && g.expected === expected && now - g.soughtAt < retryMs) return false;
      gaps.set(partition, { expected, soughtAt: now });
      return true;
    },
    clear: (partition) => void gaps.delete(partition),
    due(now) {
      const out: Array<{ partition: number; expected: number }> = [];
      for (const [partition, g] of gaps) {
        if (now - g.soughtAt < retryMs) continue;
        g.soughtAt = now;
        out.push({ partition, expected: g.expected });
      }
      return out;
    },
    open: () => [...gaps.keys()],
  };
}
