import { createLagGauge } from "./lag.ts";
import type { FfiConsumer, Message, RebalanceEvent } from "../kafka/ffi-consumer.ts";
import type { KafkaConfig, WorkerConfig } from "../config.ts";
import { readViewMessage, type ViewMessage, viewCount } from "../domain/view.ts";
import { limitedLog, type Logger } from "../log.ts";
import type { Registry } from "../metrics.ts";
import { NO_OFFSET } from "../db/offsets.ts";
import { createCoalescer, type AddResult, type Batch } from "./coalescer.ts";
import { backoff, pollWaitMs, startFlusher } from "./flusher.ts";
import { createGapTracker } from "./gaps.ts";
import type { OffsetProblem } from "./offset-check.ts";
import { createOffsetGuard, type OffsetStore } from "./offset-guard.ts";
import { createKafkaCommits } from "./kafka-commits.ts";
import { createStallDetector, stallResponse, type PartitionPosition, type Stall } from "./stall.ts";
import type { FlushResult } from "./writer.ts";

// The worker's loop: fetch a batch of messages, coalesce them in memory, and let the flusher persist what
// has accumulated. Exactly-once effect: Postgres holds counts and offsets together; Kafka's committed offset
// trails them and only serves to start fetching near the right place and to show lag.

/** The Kafka consumer the loop drives (kafka/ffi-consumer.ts); the unit tests give it a fake one. */
export type Source = FfiConsumer;

/** What it needs of Postgres (writer.ts) and of the topic's log (kafka/admin.ts). */
export interface Store extends OffsetStore {
  flush(batch: Batch, topicId: string | null): Promise<FlushResult>;
  /** Copies a message that cannot be counted to the dead-letter topic (kafka/dead-letter.ts); rejects if it could not. */
  deadLetter(letter: { partition: number; offset: number; payload: Uint8Array | null | undefined; reason: string }): Promise<void>;
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

/**
 * Takes a consumer out of the group before it is dropped. unsubscribe() starts a revocation (and, when a
 * rebalance is under way, waits for it) that librdkafka completes, and then sends LeaveGroup, only inside
 * polls; a consumer nobody polls any more stays a member, and every rebalance waits for it with nobody fetching.
 * Measured on one broker: 5-6 s of PreparingRebalance per replaced consumer; in a rolling restart of three
 * brokers, consumers that had lost their assignment stayed members holding half the partitions for over 30 s
 * each, and every new consumer waited on them. So it is polled until the group's coordinator no longer lists
 * it (bounded). Messages read here are not counted: the next holder reads them again from Postgres' offsets.
 */
async function retire(old: Source, stillMember: (clientId: string) => Promise<boolean>, drainMs = 15_000): Promise<void> {
  try {
    old.unsubscribe();
  } catch {}
  const deadline = performance.now() + drainMs;
  while (performance.now() < deadline) {
    await old.recvBatch(100, 100).catch(() => Bun.sleep(100));
    let holds = 0;
    try {
      holds = old.assignment().length;
    } catch {}
    // Kafka unreachable: assume it is still a member (the loop is bounded).
    if (holds === 0 && !(await stillMember(old.clientId).catch(() => true))) break;
  }
  await Promise.race([old.disconnect().catch(() => {}), Bun.sleep(5000)]);
}

const viewsIn = (m: ViewMessage) => m.keyed.reduce((n, k) => n + viewCount(k.views), viewCount(m.views));

export function startConsumer(
  kafka: KafkaConfig,
  config: WorkerConfig,
  makeSource: () => Source,
  store: Store,
  log: Logger,
  metrics: Registry,
  opts: { subscribeAttempts?: number; stallMs?: number; stallCheckMs?: number } = {},
): ViewConsumer {
  const subscribeAttempts = opts.subscribeAttempts ?? SUBSCRIBE_ATTEMPTS;
  const stallCheckMs = opts.stallCheckMs ?? STALL_CHECK_MS;
  const m = {
    consumed: metrics.counter("worker_messages_total", "Messages read from Kafka, by outcome"),
    deadLetters: metrics.counter(
      "worker_dead_letters_total",
      "Messages that could not be counted exactly, copied to <topic>.dlq (result: written, or failed and skipped)",
    ),
    viewsRead: metrics.counter("worker_views_read_total", "Views in counted messages, pending or applied"),
    flushes: metrics.counter("worker_flushes_total", "Flush transactions committed"),
    fetchFailures: metrics.counter("worker_fetch_failures_total", "Kafka fetches that failed and were retried"),
    flushFailures: metrics.counter("worker_flush_failures_total", "Flush attempts that failed and will be retried"),
    flushSeconds: metrics.histogram(
      "worker_flush_duration_seconds",
      "Flush transaction duration",
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    ),
    flushProducts: metrics.histogram("worker_flush_products", "Distinct products per flush", [1, 10, 100, 1000, 10000, 100000]),
    views: metrics.counter("worker_views_applied_total", "Views added to view_count"),
    rows: metrics.counter("worker_rows_updated_total", "Product rows updated"),
    historyRows: metrics.counter("worker_history_rows_total", "Rows of the views history (product, minute) written by flushes"),
    repeats: metrics.counter(
      "worker_idempotent_repeats_total",
      "Keyed requests not counted because their Idempotency-Key was counted within the window, by whether the body matched",
    ),
    unknown: metrics.counter("worker_unknown_products_total", "Distinct unknown product ids per flush, summed"),
    fenced: metrics.counter("worker_partitions_fenced_total", "Slices dropped because another worker moved the partition's offset"),
    replaced: metrics.counter("worker_consumer_replaced_total", "Kafka consumers replaced because the topic's id changed under them"),
    rebalances: metrics.counter("worker_rebalance_events_total", "Rebalance callbacks, by event and action (assign / revoke)"),
    seeks: metrics.counter("worker_gap_seeks_total", "Seeks back to the next uncounted offset after a gap in the fetched offsets"),
    stalls: metrics.counter(
      "worker_stalls_total",
      "Partitions found sitting still with messages to count for another window, by response (seek, replace the consumer, wait for its holder)",
    ),
  };
  metrics.gauge("worker_pending_products", "Distinct products waiting for the next flush", () => coalescer.size());
  metrics.gauge("worker_paused", "1 while fetching is paused for a flush backlog", () => (paused ? 1 : 0));
  metrics.gauge("worker_coalescing_ratio", "Views applied per row updated (higher is cheaper)", () => {
    const rows = m.rows.get();
    return rows === 0 ? 0 : m.views.get() / rows;
  });

  const setLag = createLagGauge(metrics);
  const coalescer = createCoalescer();
  const gaps = createGapTracker();
  const guard = createOffsetGuard(store, coalescer, forget, log, metrics);
  // Lag monitoring and restart position only; correctness rests on the offsets in Postgres.
  const commits = createKafkaCommits((partition, offset) => {
    source.commit(kafka.topic, partition, offset).catch((err) => log.debug({ err }, "kafka commit failed"));
  }, config.commitIntervalMs);
  const readyDeferred = Promise.withResolvers<void>();
  const crashedDeferred = Promise.withResolvers<never>();
  crashedDeferred.promise.catch(() => {});
  let stopping = false;
  let paused = false;
  let lastUnknownLog = 0;
  let lastMismatchLog = -Infinity;
  const stalls = createStallDetector(opts.stallMs ?? STALL_MS);
  let lastStallCheck = performance.now();
  let stallCheck: Promise<void> | null = null;
  let stalled: { found: Stall[]; positions: PartitionPosition[] } | null = null;
  let lastStallWaitLog = -Infinity;
  let lastFetchAt = 0;
  let fetchedSinceCheck = 0;

  const isMember = async (clientId: string) => (await store.groupMembers()).includes(clientId);

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
  // Each batch is written with the topic id its bases were checked against, even if the topic changes meanwhile.
  const batchTopic = new WeakMap<Batch, string | null>();
  let lastTopicCheck = performance.now();

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
    for (let attempt = 0; ; attempt++) {
      try {
        await source.subscribe(kafka.topic);
        return;
      } catch (err) {
        if (stopping) throw err;
        if (attempt + 1 >= subscribeAttempts) throw new Error(`cannot subscribe to ${kafka.topic}`, { cause: err });
        log.warn({ err, attempt }, "subscribe failed; retrying");
        await Bun.sleep(backoff(attempt + 2));
      }
    }
  }

  /**
   * The message's views, or null when they cannot be counted exactly: then, if it is the partition's next message
   * (not a replay or a late one), it is copied to the dead-letter topic before the offset moves past it. A copy
   * that fails is logged with the message's place (it stays readable in the topic for its retention) and the
   * worker moves on all the same: one message must not stop every count.
   */
  const deadLetterLog = limitedLog(log, 10_000);
  async function readOrDeadLetter(msg: Message): Promise<ViewMessage | null> {
    const read = readViewMessage(msg.payload);
    let reason: string;
    if ("error" in read) reason = read.error;
    else if (!coalescer.fits(msg.partition, read.views, read.keyed)) {
      reason = "its counts cannot be held exactly with the views pending (a sum past 2^53)";
    } else return read;
    const expected = coalescer.expected(msg.partition);
    if (expected !== msg.offset && expected !== NO_OFFSET) return null;
    const letter = { partition: msg.partition, offset: msg.offset, payload: msg.payload, reason };
    try {
      await store.deadLetter(letter);
      m.deadLetters.inc({ result: "written" });
      deadLetterLog("warn", { partition: msg.partition, offset: msg.offset, reason }, "message dead-lettered");
    } catch (err) {
      m.deadLetters.inc({ result: "failed" });
      deadLetterLog("error", { err, partition: msg.partition, offset: msg.offset, reason }, "could not dead-letter a message; skipped");
    }
    return null;
  }

  function account(msg: Message, result: AddResult | "held") {
    m.consumed.inc({ outcome: result });
    if (result === "counted" || result === "malformed") gaps.clear(msg.partition);
    if (result === "gap") {
      const expected = coalescer.expected(msg.partition)!;
      if (gaps.onGap(msg.partition, expected, performance.now())) seek(msg.partition, expected);
    } else if (result === "duplicate") guard.onDuplicate(performance.now());
  }

  /**
   * A topic deleted and created again (or a wiped Kafka) under a running consumer: librdkafka keeps the old
   * log's partition state and fetches nothing from the new one, and nothing else would notice. So the id is
   * checked every few seconds; on a change the consumer is replaced, and the new one's first messages meet
   * the offset check in ensureBases (and are held until re-based).
   */
  async function checkTopic(now: number) {
    if (now - lastTopicCheck < TOPIC_CHECK_MS) return;
    lastTopicCheck = now;
    const id = await store.topicId().catch(() => null);
    const topicId = guard.topicId();
    if (id === null || topicId === null || id === topicId) return;
    log.error(
      { topicIdBefore: topicId, topicId: id },
      "the topic's id changed under the consumer (recreated, or Kafka's data wiped); replacing the consumer",
    );
    m.replaced.inc();
    guard.setTopicId(id);
    await replaceConsumer();
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
    stalls.reset();
    await retire(old, isMember);
    source = makeSource();
    source.onEvents(onEvents);
    await subscribe();
  }

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

  /** In the background, every few seconds: is any partition sitting still with messages to count? */
  function checkForStall(now: number) {
    if (stallCheck || now - lastStallCheck < stallCheckMs) return;
    lastStallCheck = now;
    stallCheck = (async () => {
      const marks = await store.watermarks();
      const stored = await store.loadOffsets([...marks.keys()]);
      setLag(marks, stored);
      const positions: PartitionPosition[] = [];
      for (const [partition, w] of marks) {
        if (guard.isHeld(partition)) continue;
        positions.push({
          partition,
          position: Math.max(coalescer.expected(partition) ?? -1, stored.get(partition)?.next ?? -1, w.low),
          logEnd: w.high,
        });
      }
      const found = stalls.observe(performance.now(), positions, paused);
      if (found.length > 0) stalled = { found, positions };
    })()
      .catch((err) => log.debug({ err }, "stall check skipped: cannot read the log's watermarks or the stored offsets"))
      .finally(() => (stallCheck = null));
  }

  async function housekeeping(now: number) {
    await checkTopic(now);
    checkForStall(now);
    if (stalled) {
      const { found, positions } = stalled;
      stalled = null;
      const mine = assigned();
      const responses = found.map((st) => ({ ...st, response: stallResponse(st, mine) }));
      for (const r of responses) m.stalls.inc({ response: r.response });
      const replace = responses.some((r) => r.response === "replace");
      const context = {
        stalls: responses,
        assigned: mine,
        positions,
        paused,
        pending: coalescer.size(),
        gaps: gaps.open(),
        lastFetchAgoMs: Math.round(now - lastFetchAt),
        fetchedSinceCheck,
      };
      fetchedSinceCheck = 0;
      if (replace) {
        log.error(context, "partitions sat still with messages to count; replacing the Kafka consumer");
        await replaceConsumer();
      } else {
        const seeks = responses.filter((r) => r.response === "seek");
        if (seeks.length > 0) log.warn(context, "partitions sat still with messages to count; seeking them back to their counted offset");
        else if (now - lastStallWaitLog > 60_000) {
          lastStallWaitLog = now;
          log.warn(context, "partitions held by another consumer of the group sit still; left to it for now");
        }
        for (const r of seeks) seek(r.partition, r.position, "stall");
      }
    }
    for (const g of gaps.due(now)) seek(g.partition, g.expected);
    for (const { partition, next } of await guard.recheckHeld(now)) {
      // The fetch position is past the re-based offset: go back to it at once.
      if (next >= 0 && gaps.onGap(partition, next, now)) seek(partition, next);
    }
  }

  async function consumeLoop() {
    await subscribe();
    let first = true;
    let fetchFailures = 0;
    while (!stopping) {
      // Paused or not, the loop keeps polling: that is what keeps this consumer in its group
      // (max.poll.interval.ms); while paused librdkafka fetches nothing new for us.
      const full = coalescer.size() >= config.maxPendingProducts;
      if (full !== paused) {
        paused = full;
        if (full) {
          source.pause();
          log.warn({ pending: coalescer.size() }, "pending map full; fetching paused until a flush drains it");
        } else {
          source.resume();
          log.info("fetching resumed");
        }
      }
      await housekeeping(performance.now());
      let messages: Message[];
      try {
        messages = await source.recvBatch(config.fetchBatchSize, pollWaitMs(flusher.dueAt(), performance.now()));
        fetchFailures = 0;
        if (messages.length > 0) {
          lastFetchAt = performance.now();
          fetchedSinceCheck += messages.length;
        }
      } catch (err) {
        // Broker away or restarting: librdkafka reconnects by itself; keep asking, without a log line per try.
        if (fetchFailures++ === 0) log.warn({ err }, "fetch failed; retrying until Kafka answers");
        m.fetchFailures.inc();
        await Bun.sleep(backoff(Math.min(fetchFailures, 4)));
        continue;
      }
      if (first) {
        first = false;
        readyDeferred.resolve();
      }
      if (messages.length === 0) continue;
      await guard.ensureBases(
        [...new Set(messages.filter((x) => !coalescer.hasBase(x.partition)).map((x) => x.partition))],
        () => stopping,
      );
      for (const msg of messages) {
        if (guard.isHeld(msg.partition)) {
          account(msg, "held");
          continue;
        }
        const decoded = await readOrDeadLetter(msg);
        const result = coalescer.add(msg.partition, msg.offset, decoded?.views ?? null, decoded?.keyed, decoded?.at);
        if (result === "counted") m.viewsRead.inc(undefined, viewsIn(decoded!));
        account(msg, result);
      }
      if (coalescer.size() >= config.flushMaxProducts) flusher.wake();
    }
  }

  async function write(batch: Batch) {
    const t0 = performance.now();
    const res = await store.flush(batch, batchTopic.has(batch) ? batchTopic.get(batch)! : guard.topicId());
    m.flushSeconds.observe((performance.now() - t0) / 1000);
    m.flushes.inc();
    m.flushProducts.observe(batch.products);
    m.views.inc(undefined, res.views);
    m.rows.inc(undefined, res.rowsUpdated);
    m.historyRows.inc(undefined, res.historyRows);
    if (res.repeats > res.mismatched) m.repeats.inc({ body: "same" }, res.repeats - res.mismatched);
    if (res.mismatched > 0) {
      m.repeats.inc({ body: "different" }, res.mismatched);
      // A client bug (one key for two requests) that this API process could not see: the first body won.
      if (performance.now() - lastMismatchLog > 10_000) {
        lastMismatchLog = performance.now();
        log.warn({ mismatched: res.mismatched }, "an Idempotency-Key came back with another body; only its first request was counted");
      }
    }
    if (res.unknownProducts > 0) void reportUnknown(batch, res.unknownProducts);
    for (const f of res.fenced) {
      m.fenced.inc();
      forget(f.partition);
      log.warn(f, "partition fenced: its stored offset moved under us; dropped our slice and refetch from the stored offset");
      // If we still own it, the position is past the stored offset: the gap tracker seeks back (and retries).
      if (f.stored >= 0 && gaps.onGap(f.partition, f.stored, performance.now())) seek(f.partition, f.stored);
    }
    commitToKafka(batch, new Set(res.fenced.map((f) => f.partition)));
  }

  function commitToKafka(batch: Batch, fenced: Set<number>) {
    for (const s of batch.slices) if (!fenced.has(s.partition)) commits.flushed(s.partition, s.next);
  }

  async function reportUnknown(batch: Batch, n: number) {
    m.unknown.inc(undefined, n);
    const now = performance.now();
    if (now - lastUnknownLog < 10_000) return;
    lastUnknownLog = now;
    const ids = batch.slices.flatMap((s) => [...s.counts.keys()]);
    const sample = await store.sampleUnknown(ids).catch(() => []);
    log.warn({ unknown: n, sample }, "views for unknown products were not counted");
  }

  let lastFailureLog = 0;
  const flusher = startFlusher({
    coalescer,
    take() {
      const batch = coalescer.take();
      if (batch) batchTopic.set(batch, guard.topicId());
      return batch;
    },
    write,
    intervalMs: config.flushIntervalMs,
    maxRowsPerS: config.flushMaxRowsPerS,
    maxIntervalMs: config.flushMaxIntervalMs,
    timeoutMs: config.flushTimeoutMs,
    log,
    onFailure(err, batch) {
      m.flushFailures.inc();
      const now = performance.now();
      if (now - lastFailureLog > 5000) {
        lastFailureLog = now;
        log.warn({ err, products: batch.products }, "flush failed; will retry the same batch");
      }
    },
  });

  const consuming = consumeLoop().catch((err) => {
    if (stopping) return;
    log.fatal({ err }, "consume loop crashed");
    readyDeferred.reject(err);
    crashedDeferred.reject(err);
  });
  readyDeferred.promise.catch(() => {});

  return {
    ready: readyDeferred.promise,
    crashed: crashedDeferred.promise,
    held: () => guard.held(),
    async stop() {
      stopping = true;
      await consuming;
      const { pending } = await flusher.stop();
      if (pending > 0) log.error({ pending }, "stopped with views not flushed; they will be replayed");
      // The next owner starts from here; librdkafka sends queued commits before its consumer closes.
      commits.commitDue();
      await retire(source, isMember);
    },
  };
}
