import { AppError } from "../errors.ts";
import type { ViewEvent } from "../domain/view.ts";
import type { KeyTag, Outcome, Written } from "./lane-batch.ts";

export interface Entry {
  events: readonly ViewEvent[];
  tag: KeyTag | undefined;
  views: number;
  /** Items (product, count) it holds in memory: what INGEST_MAX_IN_FLIGHT bounds. */
  items: number;
  enqueuedAt: number;
  /** When it was accepted (epoch ms, the producer's clock): its views' minute in the history. */
  at: number;
  /** Answered already (by the deadline sweep); the lane's later report only updates the accounting. */
  answered: boolean;
  resolve(): void;
  reject(e: AppError): void;
}

export const unavailable = (message: string, written: Written, cause?: unknown) =>
  new AppError("ingest_unavailable", message, { retryable: true, cause, details: { written } });

/**
 * Every accepted request until it is answered: the queue waiting for a lane, the batches being sent, and the items
 * they hold (what INGEST_MAX_IN_FLIGHT bounds). No request waits past its deadline: queued ones that never left
 * are dropped and answered 503 (not written); ones handed to librdkafka are answered 503 "unknown" (they may
 * still land), and their later report only updates the accounting.
 */
export function createInFlight(deliveryTimeoutMs: number, queueBudgetMs: number, onStale: (e: Entry) => void) {
  const queue: Entry[] = [];
  const sending = new Set<Entry[]>();
  let items = 0;
  let drained: (() => void) | null = null;

  function settle(e: Entry, outcome: Outcome) {
    items -= e.items;
    if (!e.answered) {
      e.answered = true;
      if (outcome.ok) e.resolve();
      else
        e.reject(
          unavailable(
            outcome.written === "no"
              ? "the event stream did not take the view; retry later"
              : "kafka did not confirm the view; retry later",
            outcome.written,
          ),
        );
    }
    if (drained && items === 0) drained();
  }

  function dropStale() {
    const stale = performance.now() - queueBudgetMs;
    let i = 0;
    while (i < queue.length && queue[i]!.enqueuedAt < stale) i++;
    if (i === 0) return;
    // Too late to be confirmed within its deadline: refused now, never sent.
    for (const e of queue.splice(0, i)) {
      onStale(e);
      settle(e, { ok: false, written: "no", reason: "queued past its deadline" });
    }
  }

  function sweep() {
    dropStale();
    const limit = performance.now() - deliveryTimeoutMs;
    for (const entries of sending) {
      for (const e of entries) {
        if (e.answered || e.enqueuedAt >= limit) continue;
        e.answered = true;
        e.reject(unavailable("kafka did not confirm the view in time; retry later", "unknown"));
      }
    }
  }

  return {
    queue,
    settle,
    dropStale,
    sweep,
    add(e: Entry) {
      items += e.items;
      queue.push(e);
    },
    items: () => items,
    sending: (entries: Entry[]) => sending.add(entries),
    sent: (entries: Entry[]) => sending.delete(entries),
    /** Resolves when every accepted request was answered by its report. */
    drained: () => new Promise<void>((r) => (drained = r)),
  };
}

export type InFlight = ReturnType<typeof createInFlight>;
