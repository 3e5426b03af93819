import { within } from "../deadline.ts";
import type { OutgoingMessage } from "../kafka/ffi-producer.ts";
import type { Logger } from "../log.ts";
import { matchReports, type Outcome, type Outgoing, payloadOf, type Queued, type Report, type Written } from "./lane-batch.ts";

// One batch through one lane (ingest/producer.ts says why lanes): enqueue it, wait until librdkafka settled every
// message, read exactly that batch's delivery reports. Each step is bounded; a step that overruns, or a producer
// whose reports cannot be trusted any more, retires the lane's producer.

/** What a lane needs from a librdkafka producer (kafka/ffi-producer.ts); unit tests pass their own. */
export interface Lane {
  send(record: { topic: string; messages: OutgoingMessage[] }): Promise<unknown>;
  flush(): Promise<Report[]>;
  inFlightCount(): number;
  getLastDeliveryResults(): Report[];
  /** Frees the producer once the lane has given it up (what it still holds is never read). */
  close?(): void;
}

export interface Cycle {
  outcomes: Outcome[];
  sendError: unknown;
  /** Why this lane's producer must not take another batch (null: it may). */
  retire: string | null;
}

/** send() only enqueues into librdkafka's queue: a send() that takes longer than this is wedged. */
const SEND_DEADLINE_MS = 2000;
/** flush() runs once nothing is in flight and waits at most its queueTimeout (1 s) inside librdkafka. */
const FLUSH_DEADLINE_MS = 3000;

export const allOf = (batch: readonly unknown[], written: Written, reason: string): Outcome[] =>
  batch.map(() => ({ ok: false, written, reason }) as const);

export function safeInFlight(lane: Lane): number | undefined {
  try {
    return lane.inFlightCount();
  } catch {
    return undefined;
  }
}

/** Waits until librdkafka settled every message of the lane; false when it did not within `ms`. */
async function settled(lane: Lane, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (lane.inFlightCount() > 0) {
    if (performance.now() > deadline) return false;
    await Bun.sleep(1);
  }
  return true;
}

/** Enqueues the batch; `sent` false when send() did not return in time, `threw` when it failed part-way. */
async function send(lane: Lane, topic: string, batch: Outgoing<Queued>[]) {
  let error: unknown = null;
  let threw = false;
  const messages = batch.map((m) => ({
    payload: payloadOf(m),
    partition: m.partition,
    key: m.key === undefined ? undefined : Buffer.from(m.key),
  }));
  const sent = await within(
    lane.send({ topic, messages }).catch((err) => {
      // Part of the batch may be enqueued: its reports still come, and are matched by partition.
      error = err;
      threw = true;
    }),
    SEND_DEADLINE_MS,
  );
  return { sent, error, threw };
}

/**
 * flush() rejects as a whole when any message failed; the reports of that same flush are then in
 * getLastDeliveryResults(), which only this lane's one batch at a time can have filled. Null: no reports.
 */
async function reports(lane: Lane): Promise<{ done: boolean; reports: Report[] | null; error: unknown }> {
  let out: Report[] | null = null;
  let error: unknown = null;
  const done = await within(
    lane.flush().then(
      (r) => {
        out = r;
      },
      (err) => {
        error = err;
        const last = lane.getLastDeliveryResults();
        out = last.length > 0 ? last : null;
      },
    ),
    FLUSH_DEADLINE_MS,
  );
  return { done, reports: out, error };
}

export async function cycle(lane: Lane, topic: string, batch: Outgoing<Queued>[], settleMs: number, log: Logger): Promise<Cycle> {
  const s = await send(lane, topic, batch);
  let sendError = s.error;
  // What it enqueued, if anything, is unknown, and its reports would land in a later batch's flush.
  if (!s.sent)
    return { outcomes: allOf(batch, "unknown", "kafka producer did not take the batch in time"), sendError, retire: "send wedged" };
  // Reports still owed by this producer would be read by its next flush and charged to another batch.
  if (!(await settled(lane, settleMs))) {
    return { outcomes: allOf(batch, "unknown", "kafka did not settle the batch in time"), sendError, retire: "not settled" };
  }
  const f = await reports(lane);
  sendError ??= f.error;
  if (!f.done) return { outcomes: allOf(batch, "unknown", "kafka producer did not flush in time"), sendError, retire: "flush wedged" };
  // Reports this flush did not hand back may still sit in the producer, where a later flush would find them.
  if (!f.reports) return { outcomes: allOf(batch, "unknown", "flush failed without reports"), sendError, retire: "flush failed" };
  const m = matchReports(batch, f.reports);
  if (m.unmatched > 0) log.warn({ unmatched: m.unmatched }, "delivery reports did not match the batch's partitions");
  // A send() that threw enqueued nothing more after the throw; the usual cause is a producer that can no longer
  // produce at all (librdkafka's fatal idempotence errors), which only a new producer cures.
  return { outcomes: m.outcomes, sendError, retire: s.threw ? "send failed" : null };
}
