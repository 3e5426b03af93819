import { type Pointer, ptr } from "bun:ffi";
import {
  cstr,
  ERR_FATAL,
  EVENT_DR,
  EVENT_ERROR,
  EVENT_LOG,
  MSG_F_COPY,
  newClient,
  PURGE_INFLIGHT,
  PURGE_QUEUE,
  readLog,
  readReport,
  rdkafka,
} from "./rdkafka.ts";

// One librdkafka producer driven from the event loop: produce() copies each message into librdkafka's queue
// with a number of ours as its opaque, and every poll of the main queue (a non-blocking call, made while a
// batch is in flight and once a second otherwise) turns delivery reports into results by that number, and
// hands log lines and errors to the caller. No thread of ours: librdkafka's own broker threads do the I/O.
//
// It has the shape of a kafka-crab-js KafkaProducer that the producer lanes use (send, inFlightCount, flush,
// getLastDeliveryResults), so ingest/producer.ts's cycle is the same whichever client a lane has.

export interface DeliveryReport {
  partition: number;
  error?: { code: number; message: string };
}

export interface NativeEvents {
  /** A librdkafka log line (syslog level: 3 error, 4 warning, 6 info, 7 debug). */
  log(level: number, facility: string, text: string): void;
  /** An error librdkafka raised outside a delivery; fatal ones leave the producer unable to produce. */
  error(code: number, message: string, fatal: boolean): void;
}

/** A message for one partition; without a key, Kafka stores it unkeyed. */
export interface OutgoingMessage {
  payload: Buffer;
  partition: number;
  key?: Buffer;
}

export interface FfiProducer {
  send(record: { topic: string; messages: OutgoingMessage[] }): Promise<unknown>;
  inFlightCount(): number;
  flush(): Promise<DeliveryReport[]>;
  getLastDeliveryResults(): DeliveryReport[];
  /** Purges what is still queued or in flight and frees the producer (its reports are never read). */
  close(): void;
}

const IDLE_POLL_MS = 1000;

export class RdkafkaError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = "RdkafkaError";
  }
}

/** `configuration`: librdkafka properties (bootstrap.servers, client.id, acks, ...), all as strings. */
export function createFfiProducer(
  configuration: Record<string, string | number | boolean>,
  topic: string,
  events: NativeEvents,
): FfiProducer {
  const l = rdkafka();
  // Log lines come as events of the main queue, never from librdkafka's threads.
  const rk = newClient("producer", configuration, EVENT_DR | EVENT_ERROR | EVENT_LOG);
  const rkt = openTopic(l, rk, topic);
  const queue = l.rd_kafka_queue_get_main(rk) as Pointer;
  const book = deliveryBook(l);
  let last: DeliveryReport[] = [];
  let fatal: string | null = null;
  let closed = false;
  const poll = () => {
    if (!closed) pollEvents(l, queue, events, book.deliver, (message) => (fatal = message));
  };

  // Log lines and errors also come while no batch is in flight (a broker going away between batches).
  const idle = setInterval(() => {
    if (book.inFlight() > 0) return; // the lane is polling
    try {
      poll();
    } catch (err) {
      events.error(-1, `polling librdkafka failed: ${(err as Error).message}`, false);
    }
  }, IDLE_POLL_MS);
  idle.unref();

  return {
    async send(record) {
      if (closed) throw new RdkafkaError(ERR_FATAL, "producer closed");
      if (fatal !== null) throw new RdkafkaError(ERR_FATAL, `producer failed for good: ${fatal}`);
      for (const m of record.messages) {
        const keyLen = m.key?.length ?? 0;
        const id = book.sent(m.payload.length, keyLen);
        const key = m.key && keyLen > 0 ? ptr(m.key) : null;
        const rc = l.rd_kafka_produce(rkt, m.partition, MSG_F_COPY, ptr(m.payload), m.payload.length, key, keyLen, id);
        if (rc !== 0) {
          const code = l.rd_kafka_last_error();
          const message = String(l.rd_kafka_err2str(code));
          if (code === ERR_FATAL) {
            book.refused(id, null);
            throw new RdkafkaError(code, message);
          }
          // Refused before it was queued (a partition the topic lacks, a full queue, a message too large): that
          // message's report, as if librdkafka had delivered it failed; the batch's others go on.
          book.refused(id, { partition: m.partition, error: { code, message } });
        }
      }
      return undefined;
    },
    inFlightCount() {
      poll();
      return book.inFlight();
    },
    async flush() {
      poll();
      last = book.take();
      const failed = last.find((r) => r.error)?.error;
      if (failed) throw new RdkafkaError(failed.code, failed.message);
      return last;
    },
    getLastDeliveryResults: () => last,
    close() {
      if (closed) return;
      closed = true;
      clearInterval(idle);
      l.rd_kafka_purge(rk, PURGE_QUEUE | PURGE_INFLIGHT);
      l.rd_kafka_topic_destroy(rkt);
      l.rd_kafka_queue_destroy(queue);
      l.rd_kafka_destroy(rk);
    },
  };
}

type Lib = ReturnType<typeof rdkafka>;

function openTopic(l: Lib, rk: Pointer, topic: string): Pointer {
  const rkt = l.rd_kafka_topic_new(rk, cstr(topic), null) as Pointer | null;
  if (rkt) return rkt;
  // A null topic handle would be dereferenced by the first produce: refuse here, in JavaScript.
  const code = l.rd_kafka_last_error();
  l.rd_kafka_destroy(rk);
  throw new Error(`librdkafka topic ${topic}: ${l.rd_kafka_err2str(code)}`);
}

/** Every event queued now: delivery reports, errors (a fatal one recorded), log lines. */
function pollEvents(
  l: Lib,
  queue: Pointer,
  events: NativeEvents,
  deliver: (r: ReturnType<typeof readReport>) => void,
  onFatal: (message: string) => void,
) {
  for (;;) {
    const ev = l.rd_kafka_queue_poll(queue, 0) as Pointer | null;
    if (!ev) return;
    try {
      const type = l.rd_kafka_event_type(ev);
      if (type === EVENT_DR) {
        for (let m = l.rd_kafka_event_message_next(ev) as Pointer | null; m; m = l.rd_kafka_event_message_next(ev) as Pointer | null) {
          deliver(readReport(m));
        }
      } else if (type === EVENT_ERROR) {
        const message = String(l.rd_kafka_event_error_string(ev));
        const isFatal = l.rd_kafka_event_error_is_fatal(ev) !== 0;
        if (isFatal) onFatal(message);
        events.error(l.rd_kafka_event_error(ev), message, isFatal);
      } else if (type === EVENT_LOG) {
        const line = readLog(l, ev);
        if (line) events.log(line.level, line.fac, line.text);
      }
    } finally {
      l.rd_kafka_event_destroy(ev);
    }
  }
}

/** Messages handed to librdkafka and not yet reported (opaque -> the payload's and key's lengths), and their reports. */
function deliveryBook(l: Lib) {
  const pending = new Map<number, { len: number; keyLen: number }>();
  let reports: DeliveryReport[] = [];
  let nextId = 1;
  return {
    sent(len: number, keyLen: number): number {
      const id = nextId++;
      pending.set(id, { len, keyLen });
      return id;
    },
    /** Refused before librdkafka queued it: its report now, or none (the whole send fails). */
    refused(id: number, report: DeliveryReport | null) {
      pending.delete(id);
      if (report) reports.push(report);
    },
    deliver(r: ReturnType<typeof readReport>) {
      const sent = pending.get(r.opaque);
      // A report that names no message of ours, or lengths other than those sent, would mean the struct is not
      // read as librdkafka wrote it: fail loudly rather than answer a request from a misread report.
      if (!sent || sent.len !== r.len || sent.keyLen !== r.keyLen) {
        throw new Error(`librdkafka delivery report does not match a sent message (opaque ${r.opaque}, len ${r.len})`);
      }
      pending.delete(r.opaque);
      reports.push(
        r.err === 0
          ? { partition: r.partition }
          : { partition: r.partition, error: { code: r.err, message: String(l.rd_kafka_err2str(r.err)) } },
      );
    },
    inFlight: () => pending.size,
    take(): DeliveryReport[] {
      const taken = reports;
      reports = [];
      return taken;
    },
  };
}
