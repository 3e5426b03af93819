// Kafka's committed offsets only decide where a restarted or new owner starts fetching, and show lag to Kafka's
// own tools; what is counted rests on the offsets stored in Postgres with the counts. So they may trail: a
// partition's newest flushed offset is committed at most once per interval, not after every flush: one commit per
// partition per flush is a request per partition per flush, which the broker pays for (bench/RESULTS.md). A trailing
// commit costs a restart a
// re-read of at most one interval of messages, which the stored offsets skip.

export interface KafkaCommits {
  /** A flush stored `next` for `partition` in Postgres: commit it with the next round. */
  flushed(partition: number, next: number, now?: number): void;
  /** The partition moved away or was fenced: whatever was due for it is not committed. */
  forget(partition: number): void;
  /** Commits what is due, now, whatever the interval (on stop). */
  commitDue(): void;
}

export function createKafkaCommits(commit: (partition: number, offset: number) => void, intervalMs: number): KafkaCommits {
  const committed = new Map<number, number>();
  const due = new Map<number, number>();
  let lastRound = -Infinity;

  function commitDue() {
    for (const [partition, offset] of due) {
      committed.set(partition, offset);
      commit(partition, offset);
    }
    due.clear();
  }

  return {
    flushed(partition, next, now = performance.now()) {
      if (committed.get(partition) === next) due.delete(partition);
      else due.set(partition, next);
      if (now - lastRound < intervalMs || due.size === 0) return;
      lastRound = now;
      commitDue();
    },
    forget(partition) {
      due.delete(partition);
      // A later owner may commit anything; after we own it again, the first flush commits afresh.
      committed.delete(partition);
    },
    commitDue,
  };
}
