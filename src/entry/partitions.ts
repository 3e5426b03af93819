import type { Config } from "../config.ts";
import { backoff } from "../backoff.ts";
import type { TopicAdmin } from "../kafka/admin.ts";
import type { Logger } from "../log.ts";

/**
 * Windows go to the topic's real partitions in turn (ingest/lane-batch.ts); until the broker tells their count, the
 * configured one is used, and a window sent to a partition the topic lacks is refused whole (503 "not written"). This
 * asks the broker until it answers, in the background; stop() ends it at its next turn.
 */
export function followPartitionCount(admin: TopicAdmin, setPartitions: (n: number) => void, config: Config, log: Logger) {
  let stopped = false;
  void (async () => {
    for (let attempt = 0; !stopped; attempt++) {
      try {
        const n = await admin.partitionCount();
        if (n > 0) {
          setPartitions(n);
          if (n !== config.kafka.partitions) {
            log.warn(
              { partitions: n, configured: config.kafka.partitions },
              "topic has another partition count than configured; using the topic's",
            );
          }
          return;
        }
      } catch (err) {
        if (attempt === 0) log.warn({ err }, "cannot read the topic's partition count yet; retrying");
      }
      await Bun.sleep(backoff(attempt, { baseMs: 200 }));
    }
  })();
  return {
    stop() {
      stopped = true;
    },
  };
}
