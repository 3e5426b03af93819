import { existsSync } from "node:fs";
import { CString, dlopen, FFIType, type Pointer, ptr, read, toBuffer } from "bun:ffi";

// librdkafka's C API through bun:ffi, for the API's producer lanes (ffi-producer.ts) and the worker's consumer
// (ffi-consumer.ts): each a non-blocking poll of one queue from the event loop, no thread of ours. Only what they
// use is bound. The library is the one scripts/librdkafka.sh put in .cache/librdkafka (librdkafka 2.16.0 from
// Confluent's wheel), or LIBRDKAFKA_PATH's; it must be 2.x from 2.12 on: the structs read below (messages, topic
// partition lists) are those of every 2.x, and 2.12 is the oldest this was run with. Below 2.6.1 SCRAM fails
// against Kafka 4 brokers (confluentinc/librdkafka#4895).

const CACHED = new URL("../../.cache/librdkafka/librdkafka.so.1", import.meta.url).pathname;
const SYSTEM_NAMES = ["librdkafka.so.1", "librdkafka.so", "librdkafka.1.dylib"];
/** rd_kafka_version() of the oldest and the first too new librdkafka this binding takes (0xMMmmrrxx). */
const MIN_VERSION = 0x020c0000;
const MAX_VERSION = 0x03000000;

const { i32, u64, ptr: P, cstring, void: VOID } = FFIType;

const SYMBOLS = {
  rd_kafka_conf_new: { args: [], returns: P },
  rd_kafka_conf_set: { args: [P, P, P, P, u64], returns: i32 },
  rd_kafka_conf_set_events: { args: [P, i32], returns: VOID },
  rd_kafka_conf_destroy: { args: [P], returns: VOID },
  rd_kafka_new: { args: [i32, P, P, u64], returns: P },
  rd_kafka_topic_new: { args: [P, P, P], returns: P },
  rd_kafka_topic_destroy: { args: [P], returns: VOID },
  // msg_opaque is a number of ours, not an address: bound as u64.
  rd_kafka_produce: { args: [P, i32, i32, P, u64, P, u64, u64], returns: i32 },
  rd_kafka_last_error: { args: [], returns: i32 },
  rd_kafka_err2str: { args: [i32], returns: cstring },
  rd_kafka_queue_get_main: { args: [P], returns: P },
  rd_kafka_queue_destroy: { args: [P], returns: VOID },
  rd_kafka_set_log_queue: { args: [P, P], returns: i32 },
  rd_kafka_queue_poll: { args: [P, i32], returns: P },
  rd_kafka_event_type: { args: [P], returns: i32 },
  rd_kafka_event_message_next: { args: [P], returns: P },
  rd_kafka_event_error: { args: [P], returns: i32 },
  rd_kafka_event_error_string: { args: [P], returns: cstring },
  rd_kafka_event_error_is_fatal: { args: [P], returns: i32 },
  rd_kafka_event_log: { args: [P, P, P, P], returns: i32 },
  rd_kafka_event_destroy: { args: [P], returns: VOID },
  rd_kafka_purge: { args: [P, i32], returns: i32 },
  rd_kafka_destroy: { args: [P], returns: VOID },
  rd_kafka_version: { args: [], returns: i32 },
  rd_kafka_version_str: { args: [], returns: cstring },
  // The consumer's (ffi-consumer.ts).
  rd_kafka_poll_set_consumer: { args: [P], returns: i32 },
  rd_kafka_queue_get_consumer: { args: [P], returns: P },
  rd_kafka_subscribe: { args: [P, P], returns: i32 },
  rd_kafka_unsubscribe: { args: [P], returns: i32 },
  rd_kafka_assign: { args: [P, P], returns: i32 },
  rd_kafka_incremental_assign: { args: [P, P], returns: P },
  rd_kafka_incremental_unassign: { args: [P, P], returns: P },
  rd_kafka_rebalance_protocol: { args: [P], returns: cstring },
  rd_kafka_assignment: { args: [P, P], returns: i32 },
  rd_kafka_pause_partitions: { args: [P, P], returns: i32 },
  rd_kafka_resume_partitions: { args: [P, P], returns: i32 },
  rd_kafka_seek_partitions: { args: [P, P, i32], returns: P },
  rd_kafka_commit: { args: [P, P, i32], returns: i32 },
  rd_kafka_consumer_close_queue: { args: [P, P], returns: P },
  rd_kafka_consumer_closed: { args: [P], returns: i32 },
  rd_kafka_destroy_flags: { args: [P, i32], returns: VOID },
  rd_kafka_event_topic_partition_list: { args: [P], returns: P },
  rd_kafka_topic_name: { args: [P], returns: cstring },
  rd_kafka_message_headers: { args: [P, P], returns: i32 },
  rd_kafka_header_get_all: { args: [P, u64, P, P, P], returns: i32 },
  rd_kafka_topic_partition_list_new: { args: [i32], returns: P },
  rd_kafka_topic_partition_list_add: { args: [P, P, i32], returns: P },
  rd_kafka_topic_partition_list_destroy: { args: [P], returns: VOID },
  rd_kafka_error_string: { args: [P], returns: cstring },
  rd_kafka_error_destroy: { args: [P], returns: VOID },
} as const;

type Lib = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];

let lib: Lib | null = null;

/** Where librdkafka is looked for, in order. */
function candidates(): string[] {
  const chosen = process.env.LIBRDKAFKA_PATH;
  if (chosen) return [chosen];
  return existsSync(CACHED) ? [CACHED] : SYSTEM_NAMES;
}

/** "2.16.0" for 0x021000ff. */
export const versionText = (v: number) => `${(v >>> 24) & 0xff}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}`;

/** librdkafka's functions; throws saying what to do when none can be loaded, or the one found is not a 2.x >= 2.12. */
export function rdkafka(): Lib {
  if (lib) return lib;
  const errors: string[] = [];
  for (const name of candidates()) {
    let loaded: Lib;
    try {
      loaded = dlopen(name, SYMBOLS).symbols;
    } catch (err) {
      errors.push(`${name}: ${(err as Error).message}`);
      continue;
    }
    const v = loaded.rd_kafka_version();
    if (v < MIN_VERSION || v >= MAX_VERSION) {
      throw new Error(
        `librdkafka ${loaded.rd_kafka_version_str()} at ${name}: this binding reads the structs of librdkafka 2.x from ` +
          `${versionText(MIN_VERSION)} on; run scripts/stack.sh deps (it fetches 2.16.0) or set LIBRDKAFKA_PATH to one`,
      );
    }
    lib = loaded;
    return lib;
  }
  throw new Error(`librdkafka not found (run scripts/stack.sh deps, or set LIBRDKAFKA_PATH): ${errors.join("; ")}`);
}

/** The loaded librdkafka's version, e.g. "2.16.0" (what kafka_client_info exports). */
export const librdkafkaVersion = () => String(rdkafka().rd_kafka_version_str());

export const EVENT_DR = 0x1;
export const EVENT_FETCH = 0x2;
export const EVENT_LOG = 0x4;
export const EVENT_ERROR = 0x8;
export const EVENT_REBALANCE = 0x10;
export const EVENT_OFFSET_COMMIT = 0x20;
/** A rebalance event's error: partitions to take, or to give up. */
export const ERR_ASSIGN_PARTITIONS = -175;
export const ERR_REVOKE_PARTITIONS = -174;
export const ERR_IN_PROGRESS = -178;
export const DESTROY_F_NO_CONSUMER_CLOSE = 0x8;
export const PURGE_QUEUE = 0x1;
export const PURGE_INFLIGHT = 0x2;
export const MSG_F_COPY = 0x2;
/** rd_kafka_resp_err_t RD_KAFKA_RESP_ERR__FATAL: the producer can produce nothing any more. */
export const ERR_FATAL = -150;

/** NUL-terminated bytes for a C string argument (kept referenced by the caller for the call's length). */
export const cstr = (s: string) => Buffer.from(`${s}\0`, "utf8");

/**
 * A new producer or consumer handle with these properties (all as strings), the events of `eventMask` enabled and
 * its log lines as events of its main queue (log.queue); throws naming the property librdkafka refused.
 */
export function newClient(
  kind: "producer" | "consumer",
  configuration: Record<string, string | number | boolean>,
  eventMask: number,
): Pointer {
  const l = rdkafka();
  const errstr = Buffer.alloc(512);
  const errText = () => errstr.toString("utf8", 0, Math.max(0, errstr.indexOf(0)));
  const conf = l.rd_kafka_conf_new()!;
  for (const [name, value] of Object.entries({ ...configuration, "log.queue": "true" })) {
    if (l.rd_kafka_conf_set(conf, cstr(name), cstr(String(value)), errstr, errstr.length) !== 0) {
      l.rd_kafka_conf_destroy(conf);
      throw new Error(`librdkafka property ${name}: ${errText()}`);
    }
  }
  l.rd_kafka_conf_set_events(conf, eventMask);
  const rk = l.rd_kafka_new(kind === "producer" ? 0 : 1, conf, errstr, errstr.length);
  if (!rk) {
    l.rd_kafka_conf_destroy(conf);
    throw new Error(`librdkafka ${kind}: ${errText()}`);
  }
  l.rd_kafka_set_log_queue(rk, null);
  return rk as Pointer;
}

// rd_kafka_message_t on 64-bit platforms: err (int), rkt, partition (int32), payload, len, key, key_len,
// offset (int64), _private (the producer's msg_opaque).
const MSG_ERR = 0;
const MSG_RKT = 8;
const MSG_PARTITION = 16;
const MSG_PAYLOAD = 24;
const MSG_LEN = 32;
const MSG_KEY = 40;
const MSG_KEY_LEN = 48;
const MSG_OFFSET = 56;
const MSG_OPAQUE = 64;

// rd_kafka_topic_partition_list_t: cnt (int), size (int), elems; each rd_kafka_topic_partition_t 64 bytes: topic,
// partition (int32), offset (int64), metadata, metadata_size, opaque, err (int), _private.
const LIST_CNT = 0;
const LIST_ELEMS = 8;
const TP_SIZE = 64;
const TP_TOPIC = 0;
const TP_PARTITION = 8;
const TP_OFFSET = 16;
const TP_ERR = 48;

export interface PartitionEntry {
  topic: string;
  partition: number;
  offset: number;
  err: number;
}

/** The entries of a rd_kafka_topic_partition_list_t. */
export function readPartitionList(list: Pointer): PartitionEntry[] {
  const n = read.i32(list, LIST_CNT);
  const elems = read.ptr(list, LIST_ELEMS) as Pointer;
  const out: PartitionEntry[] = [];
  for (let i = 0; i < n; i++) {
    const at = i * TP_SIZE;
    out.push({
      topic: new CString(read.ptr(elems, at + TP_TOPIC) as Pointer).toString(),
      partition: read.i32(elems, at + TP_PARTITION),
      offset: Number(read.i64(elems, at + TP_OFFSET)),
      err: read.i32(elems, at + TP_ERR),
    });
  }
  return out;
}

/** A new list of (topic, partition[, offset]); the caller destroys it (rd_kafka_topic_partition_list_destroy). */
export function newPartitionList(l: Lib, entries: readonly { topic: string; partition: number; offset?: number }[]): Pointer {
  const list = l.rd_kafka_topic_partition_list_new(Math.max(entries.length, 1)) as Pointer;
  for (const e of entries) {
    const tp = l.rd_kafka_topic_partition_list_add(list, cstr(e.topic), e.partition) as Pointer;
    // A view of librdkafka's own element: the offset is written in place.
    if (e.offset !== undefined) toBuffer(tp, 0, TP_SIZE).writeBigInt64LE(BigInt(e.offset), TP_OFFSET);
  }
  return list;
}

export interface FetchedMessage {
  err: number;
  topic: string;
  partition: number;
  offset: number;
  /** Copies: the message's memory is librdkafka's and goes with its event. */
  payload: Buffer | null;
  key: Buffer | null;
}

/** `topicOf`: the name of a topic handle (the caller keeps them: one string a topic, not one a message). */
export function readMessage(msg: Pointer, topicOf: (rkt: Pointer) => string): FetchedMessage {
  const rkt = read.ptr(msg, MSG_RKT) as Pointer;
  const payload = read.ptr(msg, MSG_PAYLOAD) as Pointer;
  const len = Number(read.u64(msg, MSG_LEN));
  const key = read.ptr(msg, MSG_KEY) as Pointer;
  const keyLen = Number(read.u64(msg, MSG_KEY_LEN));
  return {
    err: read.i32(msg, MSG_ERR),
    topic: rkt ? topicOf(rkt) : "",
    partition: read.i32(msg, MSG_PARTITION),
    offset: Number(read.i64(msg, MSG_OFFSET)),
    payload: payload && len > 0 ? Buffer.from(toBuffer(payload, 0, len)) : null,
    key: key && keyLen > 0 ? Buffer.from(toBuffer(key, 0, keyLen)) : null,
  };
}

/** A message's headers, copied (a name met twice keeps its last value). */
export function readHeaders(l: Lib, msg: Pointer): Record<string, Buffer> {
  const hdrs = new BigUint64Array(1);
  if (l.rd_kafka_message_headers(msg, ptr(hdrs)) !== 0 || hdrs[0] === 0n) return {};
  const out: Record<string, Buffer> = {};
  const name = new BigUint64Array(1);
  const value = new BigUint64Array(1);
  const size = new BigUint64Array(1);
  for (let i = 0; l.rd_kafka_header_get_all(Number(hdrs[0]) as Pointer, i, ptr(name), ptr(value), ptr(size)) === 0; i++) {
    const v = Number(value[0]!);
    out[new CString(Number(name[0]!) as Pointer).toString()] =
      v === 0 ? Buffer.alloc(0) : Buffer.from(toBuffer(v as Pointer, 0, Number(size[0]!)));
  }
  return out;
}

export interface RawReport {
  opaque: number;
  partition: number;
  err: number;
  len: number;
  keyLen: number;
}

export function readReport(msg: Pointer): RawReport {
  return {
    err: read.i32(msg, MSG_ERR),
    partition: read.i32(msg, MSG_PARTITION),
    len: Number(read.u64(msg, MSG_LEN)),
    keyLen: Number(read.u64(msg, MSG_KEY_LEN)),
    opaque: Number(read.u64(msg, MSG_OPAQUE)),
  };
}

/** A log event's facility, text and syslog level. */
export function readLog(l: Lib, ev: Pointer): { fac: string; text: string; level: number } | null {
  const out = new BigUint64Array(2);
  const level = new Int32Array(1);
  if (l.rd_kafka_event_log(ev, ptr(out), ptr(out, 8), ptr(level)) !== 0) return null;
  const str = (p: bigint) => (p === 0n ? "" : new CString(Number(p) as Pointer).toString());
  return { fac: str(out[0]!), text: str(out[1]!), level: level[0]! };
}
