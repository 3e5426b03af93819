import type { Logger } from "../log.ts";
import type { Registry } from "../metrics.ts";
import type { OffsetProblem } from "./offset-check.ts";

const PROBLEM_TEXT = {
  topic_changed: "stored offsets belong to another topic id: the topic was recreated or Kafka's data wiped",
  log_reset: "stored offset is beyond the log end: the topic was recreated or Kafka's data wiped",
  log_truncated: "stored offset is below the log start: messages were deleted before they were counted",
} as const;

/**
 * The partitions the offset guard holds, each with its problem: a gauge per problem and one log line when a
 * partition is held and when it is released (re-checks that find it still held say nothing).
 */
export function createHeldPartitions(forget: (partition: number) => void, log: Logger, metrics: Registry) {
  const problems = metrics.gauge(
    "worker_offset_problem",
    "1 while a partition is held: offsets stored for another topic id (topic_changed), beyond the log end (log_reset) or below its start (log_truncated)",
  );
  const held = new Map<number, OffsetProblem>();
  metrics.gauge("worker_held_partitions", "Partitions not applied until their offsets are re-based", () => held.size);
  return {
    hold(problem: OffsetProblem) {
      forget(problem.partition);
      if (!held.has(problem.partition)) {
        problems.set(1, { partition: problem.partition, kind: problem.kind });
        log.error(problem, `${PROBLEM_TEXT[problem.kind]}; partition held until its offsets are re-based (bun src/main.ts rebase-offsets)`);
      }
      held.set(problem.partition, problem);
    },
    /** Still held, maybe for another reason now. */
    update(problem: OffsetProblem) {
      held.set(problem.partition, problem);
    },
    release(partition: number, stored: number) {
      const p = held.get(partition);
      if (!p) return;
      held.delete(partition);
      problems.set(0, { partition, kind: p.kind });
      log.info({ partition, stored }, "stored offset fits the log again; partition released");
    },
    has: (partition: number) => held.has(partition),
    size: () => held.size,
    partitions: () => [...held.keys()],
    list: () => [...held.values()],
  };
}
