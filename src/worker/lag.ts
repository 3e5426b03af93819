import type { TopicAdmin } from "../kafka/admin.ts";
import type { Registry } from "../metrics.ts";
import type { Logger } from "../log.ts";

// Consumer lag as it matters here: messages in the topic not yet counted in Postgres (log end offset minus
// the next_offset stored with the counts), per partition. A stored offset beyond the log end is not lag but
// a log reset: the consumer holds such partitions and reports them in worker_offset_problem.
export function startLagMonitor(
  admin: TopicAdmin,
  loadOffsets: (partitions: readonly number[]) => Promise<Map<number, { next: number }>>,
  metrics: Registry,
  log: Logger,
  everyMs = 5000,
) {
  const lag = metrics.gauge("worker_consumer_lag_messages", "Messages in Kafka not yet counted in Postgres, per partition");
  async function sample() {
    const marks = await admin.watermarks();
    const stored = await loadOffsets([...marks.keys()]);
    for (const [partition, w] of marks) {
      const next = Math.max(stored.get(partition)?.next ?? 0, w.low, 0);
      lag.set(Math.max(w.high - next, 0), { partition });
    }
  }
  const timer = setInterval(() => {
    sample().catch((err) => log.debug({ err }, "lag sample failed"));
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
    },
  };
}
