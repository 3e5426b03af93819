import type { Registry } from "../metrics.ts";

// Consumer lag as it matters here: messages in the topic not yet counted in Postgres (log end offset minus
// the next_offset stored with the counts), per partition. A stored offset beyond the log end is not lag but
// a log reset: the consumer holds such partitions and reports them in worker_offset_problem.
// Fed by the consumer's stall check, which reads the same watermarks and stored offsets every few seconds.

export function createLagGauge(metrics: Registry) {
  const lag = metrics.gauge("worker_consumer_lag_messages", "Messages in Kafka not yet counted in Postgres, per partition");
  return (marks: ReadonlyMap<number, { low: number; high: number }>, stored: ReadonlyMap<number, { next: number }>) => {
    for (const [partition, w] of marks) {
      const next = Math.max(stored.get(partition)?.next ?? 0, w.low, 0);
      lag.set(Math.max(w.high - next, 0), { partition });
    }
  };
}
