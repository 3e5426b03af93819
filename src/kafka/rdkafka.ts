import { CString, dlopen, FFIType, type Pointer, ptr, read } from "bun:ffi";

// librdkafka's C API through bun:ffi, for the API's producer lanes: what kafka-crab-js's producer needs two
// threads of its own for (a tokio runtime for its futures, a polling thread that spins for the last
// millisecond of every 100 ms poll) is here one non-blocking poll of the main queue from the event loop.
// Only what a lane uses is bound. Debian's librdkafka1 (2.0.2) or any later 2.x: the ABI below is stable
// across them, and every delivery report is checked against what was sent (see readReport).

const LIB_NAMES = ["librdkafka.so.1", "librdkafka.so", "librdkafka.1.dylib"];

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
} as const;

type Lib = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];

let lib: Lib | null = null;

/** librdkafka's functions; throws with what to install when no librdkafka can be loaded. */
export function rdkafka(): Lib {
  if (lib) return lib;
  const errors: string[] = [];
  for (const name of LIB_NAMES) {
    try {
      lib = dlopen(name, SYMBOLS).symbols;
      return lib;
    } catch (err) {
      errors.push(`${name}: ${(err as Error).message}`);
    }
  }
  throw new Error(`librdkafka is not installed (Debian: apt-get install librdkafka1): ${errors.join("; ")}`);
}

export const EVENT_DR = 0x1;
export const EVENT_LOG = 0x4;
export const EVENT_ERROR = 0x8;
export const PURGE_QUEUE = 0x1;
export const PURGE_INFLIGHT = 0x2;
export const MSG_F_COPY = 0x2;
/** rd_kafka_resp_err_t RD_KAFKA_RESP_ERR__FATAL: the producer can produce nothing any more. */
export const ERR_FATAL = -150;

/** NUL-terminated bytes for a C string argument (kept referenced by the caller for the call's length). */
export const cstr = (s: string) => Buffer.from(`${s}\0`, "utf8");

// rd_kafka_message_t on 64-bit platforms: err (int), rkt, partition (int32), payload, len, key, key_len,
// offset (int64), _private (the producer's msg_opaque).
const MSG_ERR = 0;
const MSG_PARTITION = 16;
const MSG_LEN = 32;
const MSG_KEY_LEN = 48;
const MSG_OPAQUE = 64;

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
