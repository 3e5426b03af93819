import type { Watermarks } from "../kafka/admin.ts";

// The offsets stored in Postgres say which messages of each partition are counted. They only make sense
// against the same log: if the topic is recreated or Kafka's data is wiped, new messages start below the
// stored offset and would all be skipped as "already counted"; if retention deleted messages never counted,
// they are gone. Either way the worker must not go on silently: it holds the partition and reports it until
// an operator re-bases the stored offset (`bun src/main.ts rebase-offsets`).

export type OffsetProblem =
  | { kind: "log_reset"; partition: number; stored: number; low: number; high: number }
  | { kind: "log_truncated"; partition: number; stored: number; low: number; high: number };

/** `stored` is the next offset to count (negative: nothing stored yet, always fine). */
export function offsetProblem(partition: number, stored: number, w: Watermarks | undefined): OffsetProblem | null {
  if (stored < 0 || !w) return null;
  if (w.high < stored) return { kind: "log_reset", partition, stored, low: w.low, high: w.high };
  if (w.low > stored) return { kind: "log_truncated", partition, stored, low: w.low, high: w.high };
  return null;
}
