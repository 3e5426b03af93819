import type { Pointer } from "bun:ffi";
import { ptr } from "bun:ffi";
import {
  DESTROY_F_NO_CONSUMER_CLOSE,
  ERR_ASSIGN_PARTITIONS,
  ERR_IN_PROGRESS,
  EVENT_ERROR,
  EVENT_FETCH,
  EVENT_LOG,
  EVENT_OFFSET_COMMIT,
  EVENT_REBALANCE,
  newClient,
  newPartitionList,
  type PartitionEntry,
  rdkafka,
  readHeaders,
  readLog,
  readMessage,
  readPartitionList,
} from "./rdkafka.ts";
import type { NativeEvents } from "./ffi-producer.ts";

// One librdkafka group consumer driven from the event loop, as ffi-producer.ts drives a producer: every event of the
// client (fetched messages, rebalances, log lines, errors, commit results) comes on one queue (the main queue
// forwarded to the consumer's), read by non-blocking polls. No thread of ours and no callback from librdkafka's
// threads: a rebalance is an event this code answers with the assignment itself (eager or cooperative, as the
// group's protocol says), between two polls.

export interface Message {
  topic: string;
  partition: number;
  offset: number;
  payload: Buffer | null;
  key: Buffer | null;
  headers?: Record<string, Buffer>;
}

export interface TopicPartitions {
  topic: string;
  partitionOffset: { partition: number; offset: number }[];
}

/** Said around each rebalance: before the assignment changes (Pre) and after (Post). */
export interface RebalanceEvent {
  name: "PreRebalance" | "PostRebalance";
  payload: { action: "assign" | "revoke"; tpl: TopicPartitions[] };
}

export interface FfiConsumer {
  readonly clientId: string;
  subscribe(topic: string): Promise<void>;
  /** Up to `size` messages: what came within `timeoutMs`, sooner once there are `size` (worker/flusher.ts's pollWaitMs). */
  recvBatch(size: number, timeoutMs: number): Promise<Message[]>;
  /** Pauses or resumes fetching for every assigned partition. */
  pause(): void;
  resume(): void;
  /** Moves the fetch position of an assigned partition (asynchronous: messages fetched before may still come). */
  seek(topic: string, partition: number, offset: number): void;
  commit(topic: string, partition: number, offset: number): Promise<void>;
  onEvents(cb: (error: Error | undefined, event: RebalanceEvent) => void): void;
  assignment(): TopicPartitions[];
  unsubscribe(): void;
  /** Leaves the group (bounded by `timeoutMs`) and frees the client. */
  disconnect(timeoutMs?: number): Promise<void>;
}

/** Between two polls of the queue while recvBatch waits. */
const POLL_STEP_MS = 10;

const grouped = (entries: readonly PartitionEntry[]): TopicPartitions[] => {
  const byTopic = new Map<string, TopicPartitions>();
  for (const e of entries) {
    const t = byTopic.get(e.topic) ?? { topic: e.topic, partitionOffset: [] };
    byTopic.set(e.topic, t);
    t.partitionOffset.push({ partition: e.partition, offset: e.offset });
  }
  return [...byTopic.values()];
};

/** `configuration`: librdkafka properties (bootstrap.servers, group.id, ...); `headers`: read each message's. */
export function createFfiConsumer(
  configuration: Record<string, string | number | boolean>,
  events: NativeEvents,
  opts: { headers?: boolean } = {},
): FfiConsumer {
  const l = rdkafka();
  const rk = newClient("consumer", configuration, EVENT_FETCH | EVENT_REBALANCE | EVENT_ERROR | EVENT_LOG | EVENT_OFFSET_COMMIT);
  // The main queue (log lines, errors) forwarded to the consumer's: one queue to poll.
  l.rd_kafka_poll_set_consumer(rk);
  const queue = l.rd_kafka_queue_get_consumer(rk) as Pointer;
  let listener: ((error: Error | undefined, event: RebalanceEvent) => void) | null = null;
  const drain = createDrain(l, rk, queue, events, opts.headers ?? false, (e) => listener?.(undefined, e));
  let closed = false;
  const usable = () => {
    if (closed) throw new Error("consumer closed");
  };
  const withList = (topic: string, partition: number, offset: number | undefined, work: (list: Pointer) => void) => {
    usable();
    withPartitionList(l, [{ topic, partition, offset }], work);
  };

  return {
    clientId: String(configuration["client.id"] ?? ""),
    async subscribe(topic) {
      withList(topic, -1, undefined, (list) => {
        const rc = l.rd_kafka_subscribe(rk, list);
        if (rc !== 0) throw new Error(`subscribe ${topic}: ${l.rd_kafka_err2str(rc)}`);
      });
    },
    async recvBatch(size, timeoutMs) {
      usable();
      const out: Message[] = [];
      const deadline = performance.now() + timeoutMs;
      // Held until full or the wait ends, as librdkafka's own batch read does: the consume loop then runs once a
      // wait, not once a message (bench/history/2026-12.md).
      for (;;) {
        drain(out, size);
        const left = deadline - performance.now();
        if (out.length >= size || left <= 0 || closed) return out;
        await Bun.sleep(Math.min(POLL_STEP_MS, left));
      }
    },
    pause: () => withAssignment(l, rk, (list) => l.rd_kafka_pause_partitions(rk, list)),
    resume: () => withAssignment(l, rk, (list) => l.rd_kafka_resume_partitions(rk, list)),
    seek: (topic, partition, offset) =>
      withList(topic, partition, offset, (list) => seekList(l, rk, list, `seek ${topic}[${partition}] to ${offset}`)),
    async commit(topic, partition, offset) {
      withList(topic, partition, offset, (list) => {
        const rc = l.rd_kafka_commit(rk, list, 1 /* async: the result comes as an event */);
        if (rc !== 0) throw new Error(`commit ${topic}[${partition}]: ${l.rd_kafka_err2str(rc)}`);
      });
    },
    onEvents(cb) {
      listener = cb;
    },
    assignment() {
      let entries: PartitionEntry[] = [];
      withAssignment(l, rk, (list) => (entries = readPartitionList(list)));
      return grouped(entries);
    },
    unsubscribe() {
      if (!closed) l.rd_kafka_unsubscribe(rk);
    },
    async disconnect(timeoutMs = 10_000) {
      if (closed) return;
      await closeConsumer(l, rk, queue, drain, timeoutMs);
      closed = true;
    },
  };
}

type Lib = ReturnType<typeof rdkafka>;

/** The non-blocking close: it leaves the group through the same queue (its revocation is answered in drain). */
async function closeConsumer(l: Lib, rk: Pointer, queue: Pointer, drain: (out: Message[], size: number) => void, timeoutMs: number) {
  const err = l.rd_kafka_consumer_close_queue(rk, queue) as Pointer | null;
  if (err) l.rd_kafka_error_destroy(err);
  const deadline = performance.now() + timeoutMs;
  const sink: Message[] = [];
  while (l.rd_kafka_consumer_closed(rk) === 0 && performance.now() < deadline) {
    drain(sink, Number.POSITIVE_INFINITY);
    await Bun.sleep(POLL_STEP_MS);
  }
  l.rd_kafka_queue_destroy(queue);
  l.rd_kafka_destroy_flags(rk, DESTROY_F_NO_CONSUMER_CLOSE);
}

function withPartitionList(
  l: Lib,
  entries: readonly { topic: string; partition: number; offset?: number }[],
  work: (list: Pointer) => void,
) {
  const list = newPartitionList(l, entries);
  try {
    work(list);
  } finally {
    l.rd_kafka_topic_partition_list_destroy(list);
  }
}

function withAssignment(l: Lib, rk: Pointer, work: (list: Pointer) => void) {
  const out = new BigUint64Array(1);
  if (l.rd_kafka_assignment(rk, ptr(out)) !== 0 || out[0] === 0n) return;
  const list = Number(out[0]) as Pointer;
  try {
    work(list);
  } finally {
    l.rd_kafka_topic_partition_list_destroy(list);
  }
}

function seekList(l: Lib, rk: Pointer, list: Pointer, what: string) {
  const err = l.rd_kafka_seek_partitions(rk, list, 0) as Pointer | null;
  if (err) {
    const message = String(l.rd_kafka_error_string(err));
    l.rd_kafka_error_destroy(err);
    throw new Error(`${what}: ${message}`);
  }
  // An asynchronous seek leaves "in progress" (-178) in the partition's err: started, not failed.
  const failed = readPartitionList(list).find((e) => e.err !== 0 && e.err !== ERR_IN_PROGRESS);
  if (failed) throw new Error(`${what}: ${l.rd_kafka_err2str(failed.err)}`);
}

/** Handles every event queued now; fetched messages go to `out` until it holds `size`. */
function createDrain(l: Lib, rk: Pointer, queue: Pointer, events: NativeEvents, headers: boolean, said: (e: RebalanceEvent) => void) {
  // Topic handles live as long as the client: each one's name read once.
  const topics = new Map<Pointer, string>();
  const topicOf = (rkt: Pointer) => {
    const known = topics.get(rkt);
    if (known !== undefined) return known;
    const name = String(l.rd_kafka_topic_name(rkt));
    topics.set(rkt, name);
    return name;
  };
  function fetched(ev: Pointer, out: Message[]) {
    for (let m = l.rd_kafka_event_message_next(ev) as Pointer | null; m; m = l.rd_kafka_event_message_next(ev) as Pointer | null) {
      const msg = readMessage(m, topicOf);
      if (msg.err !== 0) {
        events.error(msg.err, `fetch ${msg.topic}[${msg.partition}]: ${l.rd_kafka_err2str(msg.err)}`, false);
        continue;
      }
      const { err: _, ...message } = msg;
      out.push(headers ? { ...message, headers: readHeaders(l, m) } : message);
    }
  }
  return function drain(out: Message[], size: number) {
    while (out.length < size) {
      const ev = l.rd_kafka_queue_poll(queue, 0) as Pointer | null;
      if (!ev) return;
      try {
        const type = l.rd_kafka_event_type(ev);
        if (type === EVENT_FETCH) fetched(ev, out);
        else if (type === EVENT_REBALANCE) rebalance(l, rk, ev, events, said);
        else if (type === EVENT_ERROR) {
          events.error(l.rd_kafka_event_error(ev), String(l.rd_kafka_event_error_string(ev)), l.rd_kafka_event_error_is_fatal(ev) !== 0);
        } else if (type === EVENT_LOG) {
          const line = readLog(l, ev);
          if (line) events.log(line.level, line.fac, line.text);
        } else if (type === EVENT_OFFSET_COMMIT) {
          const code = l.rd_kafka_event_error(ev);
          if (code !== 0) events.log(7, "COMMIT", `offset commit failed: ${l.rd_kafka_err2str(code)}`);
        }
      } finally {
        l.rd_kafka_event_destroy(ev);
      }
    }
  };
}

/** A rebalance answered with the assignment itself (eager or cooperative, as the group's protocol says). */
function rebalance(l: Lib, rk: Pointer, ev: Pointer, events: NativeEvents, said: (e: RebalanceEvent) => void) {
  const list = l.rd_kafka_event_topic_partition_list(ev) as Pointer;
  const action = l.rd_kafka_event_error(ev) === ERR_ASSIGN_PARTITIONS ? "assign" : "revoke";
  const tpl = grouped(readPartitionList(list));
  said({ name: "PreRebalance", payload: { action, tpl } });
  if (String(l.rd_kafka_rebalance_protocol(rk)) === "COOPERATIVE") {
    const err = (
      action === "assign" ? l.rd_kafka_incremental_assign(rk, list) : l.rd_kafka_incremental_unassign(rk, list)
    ) as Pointer | null;
    if (err) {
      events.error(-1, `${action}: ${l.rd_kafka_error_string(err)}`, false);
      l.rd_kafka_error_destroy(err);
    }
  } else {
    const rc = l.rd_kafka_assign(rk, action === "assign" ? list : null);
    if (rc !== 0) events.error(rc, `${action}: ${l.rd_kafka_err2str(rc)}`, false);
  }
  said({ name: "PostRebalance", payload: { action, tpl } });
}
