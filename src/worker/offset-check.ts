import type { Watermarks } from "../kafka/admin.ts";
import type { StoredOffset } from "../db/offsets.ts";

// The offsets stored in Postgres say which messages of each partition are counted. They only make sense
// against the same log: if the topic is recreated or Kafka's data is wiped (new topic id), new messages
// start at 0 and would be skipped as "already counted" up to the stored offset and counted after it; if
// retention deleted messages never counted, they are gone. Either way the worker must not go on silently:
// it holds the partition and reports it until an operator re-bases it (`bun src/main.ts rebase-offsets`).

export type OffsetProblemKind = "topic_changed" | "log_reset" | "log_truncated";

export interface OffsetProblem {
  kind: OffsetProblemKind;
  partition: number;
  stored: number;
  storedTopicId: string | null;
  topicId: string | null;
  low?: number;
  high?: number;
}

/** Whether the stored position fits the log as it is now (null: it does, or nothing is stored yet). */
export function offsetProblem(
  partition: number,
  stored: StoredOffset,
  topicId: string | null,
  w: Watermarks | undefined,
): OffsetProblem | null {
  if (stored.next < 0) return null;
  const base = { partition, stored: stored.next, storedTopicId: stored.topicId, topicId, low: w?.low, high: w?.high };
  if (stored.topicId !== null && topicId !== null && stored.topicId !== topicId) return { kind: "topic_changed", ...base };
  if (w && w.high < stored.next) return { kind: "log_reset", ...base };
  if (w && w.low > stored.next) return { kind: "log_truncated", ...base };
  return null;
}
