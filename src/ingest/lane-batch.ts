import { encodeViewEvents, type KeyedViews, type ViewEvent, viewerCount } from "../domain/view.ts";
import type { DeliveryReport } from "../kafka/ffi-producer.ts";
import { partitionOf } from "./partition.ts";

// Edge coalescing and delivery accounting, without I/O.
//
// Every queued request joins one message of the batch whole: its views merged per product with the window's other
// requests', at most MAX_MESSAGE_ITEMS products a message and one message per partition. KAFKA_PARTITIONER says where
// messages go: "round-robin" (default) takes partitions in turn, so messages per second depend on windows only and
// the load spreads evenly whatever the product mix (increments commute: the worker needs no product on one
// partition); "product" sends each request to its first product's partition, one row update per flush for a hot
// product with several workers (docs/capacity.md weighs the two). Each request travels in exactly one message, and a
// delivery report names a partition, so each request is answered from its own message's report. A request with an
// Idempotency-Key travels as its own entry under its key, so the worker counts it at most once.

/** A keyed request's digests (ingest/idempotency.ts). */
export interface KeyTag {
  readonly key: string;
  readonly fp: string;
  /** When the API accepted the attempt (epoch ms): the worker measures the key's window from it. */
  readonly at?: number;
}

export interface Queued {
  readonly events: readonly ViewEvent[];
  readonly tag?: KeyTag;
  /** When the API accepted the request (epoch ms): the message's time, so its minute in the worker's history. */
  readonly at?: number;
}

export interface Outgoing<E extends Queued> {
  partition: number;
  /** "product" placement: the first request's first product, whose partition this is; none in round-robin. */
  key?: string;
  entries: E[];
  /** Unkeyed requests' views, merged per product. */
  counts: Map<string, number>;
  /** Unkeyed public views' viewers, per product (one entry a view). */
  viewers: Map<string, string[]>;
  keyed: KeyedViews[];
  /** Items the payload holds: distinct merged products plus every keyed request's, plus every viewer entry. */
  items: number;
  /** Its first request's acceptance time: every request in it was accepted in the same minute (sameMinute). */
  at?: number;
}

const MINUTE_MS = 60_000;
/** History counts a message's views in the minute of its `at`, so a message never spans two minutes. */
const sameMinute = (m: Outgoing<Queued>, at: number | undefined) =>
  m.at === undefined || at === undefined || Math.floor(m.at / MINUTE_MS) === Math.floor(at / MINUTE_MS);

/** Where a batch's messages go: partitions in turn from `first`, or each request with its first product. */
export type Placement = { readonly by: "round-robin"; readonly first: number } | { readonly by: "product" };

/**
 * Moves requests from the front of `queue` into at most one message per partition, placed as `place` says. A
 * request that would push its message past `maxItems` products moves on to the next partition's message
 * (round-robin) or waits (product); one that no message can take stays queued, in order, for the next batch.
 */
export function takeBatch<E extends Queued>(queue: E[], partitions: number, maxItems: number, place: Placement): Outgoing<E>[] {
  const out = new Map<number, Outgoing<E>>();
  const rest: E[] = [];
  let current: Outgoing<E> | undefined;
  const open = (partition: number, at: number | undefined, key?: string): Outgoing<E> => {
    const m: Outgoing<E> = { partition, key, entries: [], counts: new Map(), viewers: new Map(), keyed: [], items: 0, at };
    out.set(partition, m);
    return m;
  };
  for (const entry of queue) {
    const size = entry.events.length + viewerCount(entry.events);
    let m: Outgoing<E> | undefined;
    if (place.by === "product") {
      const first = entry.events[0]!.product_id;
      const p = partitionOf(first, partitions);
      m = out.get(p);
      if (m && (m.items + size > maxItems || !sameMinute(m, entry.at))) {
        rest.push(entry);
        continue;
      }
      m ??= open(p, entry.at, first);
    } else {
      m = current;
      if (!m || m.items + size > maxItems || !sameMinute(m, entry.at)) {
        if (out.size >= partitions) {
          rest.push(entry);
          continue;
        }
        m = current = open((place.first + out.size) % partitions, entry.at);
      }
    }
    m.entries.push(entry);
    if (entry.tag) {
      const { key, fp, at } = entry.tag;
      m.keyed.push(
        at === undefined ? { key, fp, views: entry.events as ViewEvent[] } : { key, fp, at, views: entry.events as ViewEvent[] },
      );
      m.items += size;
      continue;
    }
    for (const e of entry.events) {
      const before = m.counts.get(e.product_id);
      if (before === undefined) m.items++;
      m.counts.set(e.product_id, (before ?? 0) + e.count);
      if (e.viewers) {
        const list = m.viewers.get(e.product_id);
        if (list) list.push(...e.viewers);
        else m.viewers.set(e.product_id, [...e.viewers]);
        m.items += e.viewers.length;
      }
    }
  }
  queue.length = 0;
  for (const e of rest) queue.push(e);
  return [...out.values()];
}

export function payloadOf(m: Outgoing<Queued>): Buffer {
  const events: ViewEvent[] = [];
  for (const [product_id, count] of m.counts) {
    const viewers = m.viewers.get(product_id);
    events.push(viewers ? { product_id, count, viewers } : { product_id, count });
  }
  return encodeViewEvents(events, m.keyed, m.at);
}

/** A delivery report, as the lanes' librdkafka producer gives it. */
export type Report = DeliveryReport;

/** "no": Kafka certainly did not write it. "unknown": it may have been written (sent, then no answer). */
export type Written = "no" | "unknown";
export type Outcome = { ok: true } | { ok: false; written: Written; reason: string };

// librdkafka codes (rd_kafka_resp_err_t) after which the message was certainly not written: refused before
// it left the client, or refused by the broker as a whole. Every other error may follow a send whose answer
// was lost (timeouts, a dropped connection), so for those Kafka may hold the message.
const NOT_WRITTEN = new Set([
  -152, // _PURGE_QUEUE: purged before it was sent
  -184, // _QUEUE_FULL
  -188, // _UNKNOWN_TOPIC
  -190, // _UNKNOWN_PARTITION
  2, // CORRUPT_MESSAGE
  3, // UNKNOWN_TOPIC_OR_PART
  10, // MSG_SIZE_TOO_LARGE
  18, // RECORD_LIST_TOO_LARGE
  29, // TOPIC_AUTHORIZATION_FAILED
  87, // INVALID_RECORD
]);

export function writtenAfter(code: number): Written {
  return NOT_WRITTEN.has(code) ? "no" : "unknown";
}

/**
 * Each message's outcome from the reports of one completed flush (every enqueued message settled).
 * A message without a report was never enqueued (send() failed part-way): not written. Reports that do not
 * fit one-to-one (a partition count changed under us, or a report left over from elsewhere) make the
 * messages of their partition "unknown" instead of guessing.
 */
export function matchReports(
  messages: readonly { partition: number }[],
  reports: readonly Report[],
): { outcomes: Outcome[]; unmatched: number } {
  const byPartition = new Map<number, Report[]>();
  for (const r of reports) {
    const list = byPartition.get(r.partition);
    if (list) list.push(r);
    else byPartition.set(r.partition, [r]);
  }
  const expected = new Set(messages.map((m) => m.partition));
  let unmatched = 0;
  for (const [p, list] of byPartition) if (!expected.has(p) || list.length > 1) unmatched += list.length;
  const outcomes = messages.map((m): Outcome => {
    const list = byPartition.get(m.partition);
    if (unmatched > 0 && list?.length !== 1) {
      return { ok: false, written: "unknown", reason: "delivery reports did not match the batch" };
    }
    if (!list) return { ok: false, written: "no", reason: "not handed to Kafka" };
    const r = list[0]!;
    if (!r.error) return { ok: true };
    return { ok: false, written: writtenAfter(r.error.code), reason: r.error.message };
  });
  return { outcomes, unmatched };
}
