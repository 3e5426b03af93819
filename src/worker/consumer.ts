import { createLagGauge } from "./lag.ts";
import type { FfiConsumer, Message } from "../kafka/ffi-consumer.ts";
import type { KafkaConfig, WorkerConfig } from "../config.ts";
import { limitedLog, type Logger } from "../log.ts";
import type { Registry } from "../metrics.ts";
import { backoff } from "../backoff.ts";
import type { DeadLetter } from "../kafka/dead-letter.ts";
import { type Batch, type Coalescer, createCoalescer } from "./coalescer.ts";
import { consumerGauges, consumerMetrics, type ConsumerMetrics } from "./consumer-metrics.ts";
import { type ConsumerSource, createConsumerSource } from "./consumer-source.ts";
import { pollWaitMs, startFlusher } from "./flusher.ts";
import { createFlushReport } from "./flush-report.ts";
import { createGapTracker, type GapTracker } from "./gaps.ts";
import { createIntake } from "./intake.ts";
import { createMessageReader } from "./message-reader.ts";
import type { OffsetProblem } from "./offset-check.ts";
import { createOffsetGuard, type OffsetGuard, type OffsetStore } from "./offset-guard.ts";
import { createKafkaCommits } from "./kafka-commits.ts";
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

interface LoopState {
  stopping: boolean;
  paused: boolean;
  lastFetchAt: number;
  fetchedSinceCheck: number;
}

export interface ConsumerOptions {
  subscribeAttempts?: number;
  stallMs?: number;
  stallCheckMs?: number;
}

/**
 * The consume loop: fetch, take the batch in (intake.ts), flush when due (flusher.ts), and between fetches the
 * housekeeping below. It owns the in-memory state (coalescer, gaps, offset guard) and the Kafka consumer
 * (consumer-source.ts: replaced when the topic's id changes or a stall calls for it); the modules beside it each take
 * one concern: message-reader (decode or dead-letter), flush-report (a flush's result), stall-watch.
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
  const state: LoopState = { stopping: false, paused: false, lastFetchAt: 0, fetchedSinceCheck: 0 };
  const isStopping = () => state.stopping;
  const source = createConsumerSource({
    topic: kafka.topic,
    make: makeSource,
    forget,
    groupMembers: () => store.groupMembers(),
    isStopping,
    subscribeAttempts: opts.subscribeAttempts ?? SUBSCRIBE_ATTEMPTS,
    m,
    log,
  });
  // Lag monitoring and restart position only; correctness rests on the offsets in Postgres.
  const commits = createKafkaCommits((partition, offset) => {
    source.commit(partition, offset).catch((err) => log.debug({ err }, "kafka commit failed"));
  }, config.commitIntervalMs);
  consumerGauges(metrics, m, { pending: () => coalescer.size(), paused: () => state.paused });

  function forget(partition: number) {
    coalescer.drop(partition);
    gaps.clear(partition);
    commits.forget(partition);
  }
  /** What was pending is dropped, not lost: the new consumer reads it again from each partition's stored offset. */
  async function replaceConsumer() {
    coalescer.dropAll();
    for (const p of gaps.open()) gaps.clear(p);
    stallWatch.reset();
    await source.replace();
  }

  const stallWatch = createConsumerStallWatch(store, coalescer, guard, state, opts, m, metrics, log);
  const housekeeping = createHousekeeping({
    store,
    guard,
    gaps,
    stallWatch,
    source,
    replaceConsumer,
    m,
    log,
    context: loopContext(state, coalescer, gaps),
  });
  const read = createMessageReader({ coalescer, deadLetter: (l) => store.deadLetter(l), m, log });
  const take = createIntake({ coalescer, guard, gaps, read, seek: (p, o) => source.seek(p, o), isStopping, m });
  const report = reportFlushes(store, gaps, source, commits, forget, m, log);
  const flusher = startBatchFlusher(config, coalescer, guard, store, log, m, report);

  const ready = Promise.withResolvers<void>();
  const fetch = createFetch(source, m, log);
  async function consumeLoop() {
    await source.subscribe();
    while (!state.stopping) {
      pauseWhileFull(state, coalescer.size(), config.maxPendingProducts, source, log);
      await housekeeping(performance.now());
      const messages = await fetch(config.fetchBatchSize, pollWaitMs(flusher.dueAt(), performance.now()));
      if (messages === null) continue;
      ready.resolve();
      if (messages.length === 0) continue;
      state.lastFetchAt = performance.now();
      state.fetchedSinceCheck += messages.length;
      await take(messages);
      if (coalescer.size() >= config.flushMaxProducts) flusher.wake();
    }
  }
  return running(consumeLoop, ready, state, guard, flusher, commits, source, log);
}

/** The loop started, and the handle to stop it: the flusher drains, commits go out, the consumer leaves its group. */
function running(
  consumeLoop: () => Promise<void>,
  ready: PromiseWithResolvers<void>,
  state: { stopping: boolean },
  guard: OffsetGuard,
  flusher: ReturnType<typeof startFlusher>,
  commits: ReturnType<typeof createKafkaCommits>,
  source: ConsumerSource,
  log: Logger,
): ViewConsumer {
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
      await source.retire();
    },
  };
}

/** A flush's result: a fenced partition is dropped and sought back; a flushed one's offset goes to Kafka. */
function reportFlushes(
  store: Store,
  gaps: GapTracker,
  source: ConsumerSource,
  commits: ReturnType<typeof createKafkaCommits>,
  forget: (partition: number) => void,
  m: ConsumerMetrics,
  log: Logger,
) {
  return createFlushReport({
    m,
    log,
    sampleUnknown: (ids) => store.sampleUnknown(ids),
    fenced(partition, stored) {
      forget(partition);
      // If we still own it, the position is past the stored offset: the gap tracker seeks back (and retries).
      if (stored >= 0 && gaps.onGap(partition, stored, performance.now())) source.seek(partition, stored);
    },
    flushed: (partition, next) => commits.flushed(partition, next),
  });
}

/** Paused or not, the loop keeps polling: that keeps this consumer in its group (max.poll.interval.ms). */
function pauseWhileFull(state: { paused: boolean }, pending: number, max: number, source: ConsumerSource, log: Logger) {
  const full = pending >= max;
  if (full === state.paused) return;
  state.paused = full;
  if (full) {
    source.pause();
    log.warn({ pending }, "pending map full; fetching paused until a flush drains it");
  } else {
    source.resume();
    log.info("fetching resumed");
  }
}

/** What a stall's log line says of the loop (the fetches counted since the last one). */
function loopContext(state: LoopState, coalescer: Coalescer, gaps: GapTracker) {
  return (now: number) => {
    const c = {
      paused: state.paused,
      pending: coalescer.size(),
      gaps: gaps.open(),
      lastFetchAgoMs: Math.round(now - state.lastFetchAt),
      fetchedSinceCheck: state.fetchedSinceCheck,
    };
    state.fetchedSinceCheck = 0;
    return c;
  };
}

/** One fetch; null when it failed (broker away or restarting: librdkafka reconnects, the loop asks again). */
function createFetch(source: ConsumerSource, m: ConsumerMetrics, log: Logger) {
  const fetchLog = limitedLog(log, 60_000);
  let failures = 0;
  return async (size: number, waitMs: number): Promise<Message[] | null> => {
    try {
      const messages = await source.recvBatch(size, waitMs);
      failures = 0;
      return messages;
    } catch (err) {
      if (failures++ === 0) fetchLog("warn", { err }, "fetch failed; retrying until Kafka answers");
      m.fetchFailures.inc();
      await Bun.sleep(backoff(Math.min(failures, 4)));
      return null;
    }
  };
}

function createConsumerStallWatch(
  store: Store,
  coalescer: Coalescer,
  guard: OffsetGuard,
  state: { paused: boolean },
  opts: ConsumerOptions,
  m: ConsumerMetrics,
  metrics: Registry,
  log: Logger,
) {
  return createStallWatch({
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
}

/**
 * What the loop checks between fetches: the topic's id, stalls (and the answer to one), gaps due for another
 * seek, and held partitions that fit their log again.
 */
function createHousekeeping(deps: {
  store: Store;
  guard: OffsetGuard;
  gaps: GapTracker;
  stallWatch: ReturnType<typeof createStallWatch>;
  source: ConsumerSource;
  replaceConsumer: () => Promise<void>;
  context: (now: number) => Record<string, unknown>;
  m: ConsumerMetrics;
  log: Logger;
}) {
  const { guard, gaps, stallWatch, source } = deps;
  const topicCheck = topicWatch(deps.store, guard, deps.m, deps.log, deps.replaceConsumer);
  return async (now: number) => {
    await topicCheck(now);
    stallWatch.check(now);
    await stallWatch.respond({
      assigned: () => source.assigned(),
      seek: (p, offset) => source.seek(p, offset, "stall"),
      replace: deps.replaceConsumer,
      context: () => deps.context(now),
    });
    for (const g of gaps.due(now)) source.seek(g.partition, g.expected);
    for (const { partition, next } of await guard.recheckHeld(now)) {
      // The fetch position is past the re-based offset: go back to it at once.
      if (next >= 0 && gaps.onGap(partition, next, now)) source.seek(partition, next);
    }
  };
}

/**
 * A topic deleted and created again (or a wiped Kafka) under a running consumer: librdkafka keeps the old log's
 * partition state and fetches nothing from the new one, and nothing else would notice. So the id is checked every
 * few seconds; on a change the consumer is replaced, and the new one's first messages meet the offset check in
 * ensureBases (and are held until re-based).
 */
function topicWatch(store: Store, guard: OffsetGuard, m: ConsumerMetrics, log: Logger, replace: () => Promise<void>) {
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
  coalescer: Coalescer,
  guard: OffsetGuard,
  store: Store,
  log: Logger,
  m: ConsumerMetrics,
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
