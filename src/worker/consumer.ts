import { createLagGauge } from "./lag.ts";
import type { FfiConsumer, Message, RebalanceEvent } from "../kafka/ffi-consumer.ts";
import type { KafkaConfig, WorkerConfig } from "../config.ts";
import { type ViewMessage, viewCount } from "../domain/view.ts";
import { limitedLog, type Logger } from "../log.ts";
import type { Registry } from "../metrics.ts";
import { createCoalescer, type AddResult, type Batch } from "./coalescer.ts";
import { consumerMetrics } from "./consumer-metrics.ts";
import { backoff } from "../backoff.ts";
import { pollWaitMs, startFlusher } from "./flusher.ts";
import { createFlushReport } from "./flush-report.ts";
import { createGapTracker } from "./gaps.ts";
import type { DeadLetter } from "../kafka/dead-letter.ts";
import { createMessageReader } from "./message-reader.ts";
import type { OffsetProblem } from "./offset-check.ts";
import { createOffsetGuard, type OffsetStore } from "./offset-guard.ts";
import { createKafkaCommits } from "./kafka-commits.ts";
import { retire } from "./retire.ts";
import { createStallWatch } from "./stall-watch.ts";
import type { FlushResult } from "./writer.ts";

// The worker's loop: fetch a batch of messages, coalesce them in memory, and let the flusher persist what
// has accumulated. Exactly-once effect: Postgres holds counts and offsets together; Kafka's committed offset
// trails them and only serves to start fetching near the right place and to show lag.

/** The Kafka consumer the loop drives (kafka/ffi-consumer.ts); the unit tests give it a fake one. */
export type Source = FfiConsumer;

/** What it needs of Postgres (writer.ts, db/) and of the topic's log (kafka/admin.ts). */
export interface Store extends OffsetStore {
  flush(batch: Batch, topicId: string | null): Promise<FlushResult>;
  /** Copies a message that cannot be counted to the dead-letter topic (kafka/dead-letter.ts); rejects if it could not. */
  deadLetter(letter: DeadLetter): Promise<void>;
  sampleUnknown(ids: readonly string[]): Promise<string[]>;
  /** The client ids of the group's members (kafka/admin.ts); rejects when Kafka cannot be asked. */
  groupMembers(): Promise<string[]>;
}

export interface ViewConsumer {
  /** Resolves when the consumer has joined the group and fetched for the first time. */
  ready: Promise<void>;
  /** Rejects when the consume loop died (e.g. it could never subscribe): the process should exit. */
  crashed: Promise<never>;
  /** Partitions held because their stored offsets do not fit the log (see offset-check.ts). */
  held(): OffsetProblem[];
  stop(): Promise<void>;
}

const SUBSCRIBE_ATTEMPTS = 8;
const TOPIC_CHECK_MS = 5000;
const STALL_CHECK_MS = 5000;
/**
 * One window of a stall (see stall.ts): the holder seeks after one, replaces its consumer after two; a consumer
 * holding nothing replaces itself after one; one holding other partitions replaces its own after three (30 s),
 * when a rebalance after a lost member (session timeout 6 s) has long settled. A false alarm costs a seek to
 * where the partition already is. Longer windows leave a stopped consumer unread for minutes.
 */
const STALL_MS = 10_000;

const viewsIn = (m: ViewMessage) => m.keyed.reduce((n, k) => n + viewCount(k.views), viewCount(m.views));

export interface ConsumerOptions {
  subscribeAttempts?: number;
  stallMs?: number;
  stallCheckMs?: number;
}

/**
 * The consume loop. It owns the Kafka consumer (replaced when the topic's id changes or a stall calls for it) and the
 * in-memory state (coalescer, gaps, offset guard); the flusher writes what accumulated; the modules beside this one
 * each take one concern: message-reader (decode or dead-letter), flush-report (a flush's result), stall-watch.
 */
export function startConsumer(
  kafka: KafkaConfig,
  config: WorkerConfig,
  makeSource: () => Source,
  store: Store,
  log: Logger,
  metrics: Registry,
  opts: ConsumerOptions = {},
): ViewConsumer {
  const m = consumerMetrics(metrics);
  const coalescer = createCoalescer();
  const gaps = createGapTracker();
  const guard = createOffsetGuard(store, coalescer, forget, log, metrics);
  // Lag monitoring and restart position only; correctness rests on the offsets in Postgres.
  const commits = createKafkaCommits((partition, offset) => {
    source.commit(kafka.topic, partition, offset).catch((err) => log.debug({ err }, "kafka commit failed"));
  }, config.commitIntervalMs);
  const state = { stopping: false, paused: false, lastFetchAt: 0, fetchedSinceCheck: 0 };
  metrics.gauge("worker_pending_products", "Distinct products waiting for the next flush", () => coalescer.size());
  metrics.gauge("worker_paused", "1 while fetching is paused for a flush backlog", () => (state.paused ? 1 : 0));
  metrics.gauge("worker_coalescing_ratio", "Views applied per row updated (higher is cheaper)", () => {
    const rows = m.rows.get();
    return rows === 0 ? 0 : m.views.get() / rows;
  });
  const isMember = async (clientId: string) => (await store.groupMembers()).includes(clientId);
  const read = createMessageReader({ coalescer, deadLetter: (l) => store.deadLetter(l), m, log });
  const stallWatch = createStallWatch({
    store,
    expected: (p) => coalescer.expected(p),
    isHeld: (p) => guard.isHeld(p),
    isPaused: () => state.paused,
    setLag: createLagGauge(metrics),
    stallMs: opts.stallMs ?? STALL_MS,
    checkMs: opts.stallCheckMs ?? STALL_CHECK_MS,
    m,
    log,
  });

  function forget(partition: number) {
    coalescer.drop(partition);
    gaps.clear(partition);
    commits.forget(partition);
  }

  function onEvents(error: Error | undefined, event: RebalanceEvent) {
    if (error) {
      log.warn({ err: error }, "consumer event error");
      return;
    }
    if (event.name !== "PreRebalance" && event.name !== "PostRebalance") return;
    m.rebalances.inc({ event: event.name, action: event.payload.action ?? "" });
    // Whatever we held for a moving partition is dropped, not flushed: the next owner (maybe us again) replays
    // from Kafka's committed offset, and Postgres' stored offset skips what was already counted.
    const parts = event.payload.tpl.filter((t) => t.topic === kafka.topic).flatMap((t) => t.partitionOffset.map((p) => p.partition));
    for (const p of parts) forget(p);
    if (parts.length) log.info({ event: event.name, action: event.payload.action, partitions: parts }, "rebalance");
  }
  let source = makeSource();
  source.onEvents(onEvents);

  /** Back to the next uncounted offset: after a gap in the fetched offsets, or as the first answer to a stall. */
  function seek(partition: number, offset: number, after: "gap" | "stall" = "gap") {
    if (after === "gap") m.seeks.inc();
    try {
      source.seek(kafka.topic, partition, offset);
      log.info({ partition, offset, after }, "sought back to the next uncounted offset");
    } catch (err) {
      // Not assigned right now (being moved): the gap tracker retries; the next owner starts from Postgres.
      log.warn({ partition, offset, after, err }, "seek back to the next uncounted offset failed");
    }
  }

  async function subscribe() {
    const attempts = opts.subscribeAttempts ?? SUBSCRIBE_ATTEMPTS;
    for (let attempt = 0; ; attempt++) {
      try {
        await source.subscribe(kafka.topic);
        return;
      } catch (err) {
        if (state.stopping) throw err;
        if (attempt + 1 >= attempts) throw new Error(`cannot subscribe to ${kafka.topic}`, { cause: err });
        log.warn({ err, attempt }, "subscribe failed; retrying");
        await Bun.sleep(backoff(attempt + 2));
      }
    }
  }

  /**
   * A new Kafka consumer in place of the old one: it rejoins the group, its partitions start from Kafka's
   * committed offsets, and each one's base is loaded from Postgres again (what was pending is dropped, not lost:
   * it is read again).
   */
  async function replaceConsumer() {
    const old = source;
    coalescer.dropAll();
    for (const p of gaps.open()) gaps.clear(p);
    stallWatch.reset();
    await retire(old, isMember);
    source = makeSource();
    source.onEvents(onEvents);
    await subscribe();
  }

  const topicCheck = topicWatch(store, guard, m, log, replaceConsumer);

  /** The partitions librdkafka says this consumer holds now (null: it cannot say). */
  function assigned(): number[] | null {
    try {
      return source
        .assignment()
        .filter((t) => t.topic === kafka.topic)
        .flatMap((t) => t.partitionOffset.map((p) => p.partition));
    } catch {
      return null;
    }
  }

  async function housekeeping(now: number) {
    await topicCheck(now);
    stallWatch.check(now);
    await stallWatch.respond({
      assigned,
      seek: (p, offset) => seek(p, offset, "stall"),
      replace: replaceConsumer,
      context: () => {
        const c = {
          paused: state.paused,
          pending: coalescer.size(),
          gaps: gaps.open(),
          lastFetchAgoMs: Math.round(now - state.lastFetchAt),
          fetchedSinceCheck: state.fetchedSinceCheck,
        };
        state.fetchedSinceCheck = 0;
        return c;
      },
    });
    for (const g of gaps.due(now)) seek(g.partition, g.expected);
    for (const { partition, next } of await guard.recheckHeld(now)) {
      // The fetch position is past the re-based offset: go back to it at once.
      if (next >= 0 && gaps.onGap(partition, next, now)) seek(partition, next);
    }
  }

  function account(msg: Message, result: AddResult | "held") {
    m.consumed.inc({ outcome: result });
    if (result === "counted" || result === "malformed") gaps.clear(msg.partition);
    if (result === "gap") {
      const expected = coalescer.expected(msg.partition)!;
      if (gaps.onGap(msg.partition, expected, performance.now())) seek(msg.partition, expected);
    } else if (result === "duplicate") guard.onDuplicate(performance.now());
  }

  /** Paused or not, the loop keeps polling: that keeps this consumer in its group (max.poll.interval.ms). */
  function pauseWhileFull() {
    const full = coalescer.size() >= config.maxPendingProducts;
    if (full === state.paused) return;
    state.paused = full;
    if (full) {
      source.pause();
      log.warn({ pending: coalescer.size() }, "pending map full; fetching paused until a flush drains it");
    } else {
      source.resume();
      log.info("fetching resumed");
    }
  }

  async function take(messages: Message[]) {
    await guard.ensureBases(
      [...new Set(messages.filter((x) => !coalescer.hasBase(x.partition)).map((x) => x.partition))],
      () => state.stopping,
    );
    for (const msg of messages) {
      if (guard.isHeld(msg.partition)) {
        account(msg, "held");
        continue;
      }
      const decoded = await read(msg);
      const result = coalescer.add(msg.partition, msg.offset, decoded?.views ?? null, decoded?.keyed, decoded?.at);
      if (result === "counted") m.viewsRead.inc(undefined, viewsIn(decoded!));
      account(msg, result);
    }
    if (coalescer.size() >= config.flushMaxProducts) flusher.wake();
  }

  const ready = Promise.withResolvers<void>();
  const fetchLog = limitedLog(log, 60_000);
  async function consumeLoop() {
    await subscribe();
    let fetchFailures = 0;
    while (!state.stopping) {
      pauseWhileFull();
      await housekeeping(performance.now());
      let messages: Message[];
      try {
        messages = await source.recvBatch(config.fetchBatchSize, pollWaitMs(flusher.dueAt(), performance.now()));
        fetchFailures = 0;
      } catch (err) {
        // Broker away or restarting: librdkafka reconnects by itself; keep asking, without a log line per try.
        if (fetchFailures++ === 0) fetchLog("warn", { err }, "fetch failed; retrying until Kafka answers");
        m.fetchFailures.inc();
        await Bun.sleep(backoff(Math.min(fetchFailures, 4)));
        continue;
      }
      ready.resolve();
      if (messages.length === 0) continue;
      state.lastFetchAt = performance.now();
      state.fetchedSinceCheck += messages.length;
      await take(messages);
    }
  }

  const flusher = startBatchFlusher(config, coalescer, guard, store, log, m, (batch, res, seconds) => report(batch, res, seconds));
  const report = createFlushReport({
    m,
    log,
    sampleUnknown: (ids) => store.sampleUnknown(ids),
    fenced(partition, stored) {
      forget(partition);
      // If we still own it, the position is past the stored offset: the gap tracker seeks back (and retries).
      if (stored >= 0 && gaps.onGap(partition, stored, performance.now())) seek(partition, stored);
    },
    flushed: (partition, next) => commits.flushed(partition, next),
  });

  const crashed = Promise.withResolvers<never>();
  crashed.promise.catch(() => {});
  ready.promise.catch(() => {});
  const consuming = consumeLoop().catch((err) => {
    if (state.stopping) return;
    log.fatal({ err }, "consume loop crashed");
    ready.reject(err);
    crashed.reject(err);
  });

  return {
    ready: ready.promise,
    crashed: crashed.promise,
    held: () => guard.held(),
    async stop() {
      state.stopping = true;
      await consuming;
      const { pending } = await flusher.stop();
      if (pending > 0) log.error({ pending }, "stopped with views not flushed; they will be replayed");
      // The next owner starts from here; librdkafka sends queued commits before its consumer closes.
      commits.commitDue();
      await retire(source, isMember);
    },
  };
}

/**
 * A topic deleted and created again (or a wiped Kafka) under a running consumer: librdkafka keeps the old log's
 * partition state and fetches nothing from the new one, and nothing else would notice. So the id is checked every
 * few seconds; on a change the consumer is replaced, and the new one's first messages meet the offset check in
 * ensureBases (and are held until re-based).
 */
function topicWatch(
  store: Store,
  guard: ReturnType<typeof createOffsetGuard>,
  m: ReturnType<typeof consumerMetrics>,
  log: Logger,
  replace: () => Promise<void>,
) {
  let last = performance.now();
  return async (now: number) => {
    if (now - last < TOPIC_CHECK_MS) return;
    last = now;
    const id = await store.topicId().catch(() => null);
    const topicId = guard.topicId();
    if (id === null || topicId === null || id === topicId) return;
    log.error(
      { topicIdBefore: topicId, topicId: id },
      "the topic's id changed under the consumer (recreated, or Kafka's data wiped); replacing the consumer",
    );
    m.replaced.inc();
    guard.setTopicId(id);
    await replace();
  };
}

/** The flusher over the coalescer: each batch is written with the topic id its bases were checked against. */
function startBatchFlusher(
  config: WorkerConfig,
  coalescer: ReturnType<typeof createCoalescer>,
  guard: ReturnType<typeof createOffsetGuard>,
  store: Store,
  log: Logger,
  m: ReturnType<typeof consumerMetrics>,
  report: (batch: Batch, res: FlushResult, seconds: number) => void,
) {
  // Even if the topic changes meanwhile.
  const batchTopic = new WeakMap<Batch, string | null>();
  const failureLog = limitedLog(log, 5000);
  return startFlusher({
    coalescer,
    take() {
      const batch = coalescer.take();
      if (batch) batchTopic.set(batch, guard.topicId());
      return batch;
    },
    async write(batch) {
      const t0 = performance.now();
      const res = await store.flush(batch, batchTopic.has(batch) ? batchTopic.get(batch)! : guard.topicId());
      report(batch, res, (performance.now() - t0) / 1000);
    },
    intervalMs: config.flushIntervalMs,
    maxRowsPerS: config.flushMaxRowsPerS,
    maxIntervalMs: config.flushMaxIntervalMs,
    timeoutMs: config.flushTimeoutMs,
    log,
    onFailure(err, batch) {
      m.flushFailures.inc();
      failureLog("warn", { err, products: batch.products }, "flush failed; will retry the same batch");
    },
  });
}
