import type { KafkaConfig, ProducerConfig } from "../config.ts";
import { withDeadline } from "../deadline.ts";
import { AppError } from "../errors.ts";
import { limitedLog, type Logger } from "../log.ts";
import type { Registry } from "../metrics.ts";
import { MAX_MESSAGE_ITEMS, type ViewEvent, viewCount } from "../domain/view.ts";
import { takeBatch, type KeyTag, type Outcome, type Outgoing, type Placement, type Written } from "./lane-batch.ts";
import { allOf, type Cycle, cycle, type Lane, safeInFlight } from "./lane-cycle.ts";
import { librdkafkaLanes } from "./librdkafka-lane.ts";
import { producerMetrics } from "./producer-metrics.ts";

// Why lanes: each lane owns one librdkafka producer (kafka/ffi-producer.ts) and one batch at a time: it
// enqueues the batch, watches inFlightCount() fall to zero, then flush() hands back exactly that batch's
// delivery reports, and a producer that wedges or fails for good takes only its own batch with it when it is
// replaced. Requests that arrive meanwhile queue up and ride the next free lane, merged into one message
// (lane-batch.ts).
//
// The batching window (KAFKA_LINGER_MS) is kept here, not in librdkafka: a lane batch is already merged into
// one message (one per partition when it overflows), which librdkafka's linger.ms cannot add to, so there it only
// delayed each batch. Here a free lane waits until the oldest queued request is a window old, and every request of
// that window rides in it: messages per second depend on windows, not on the request rate.

export interface ViewProducer {
  /**
   * Resolves once Kafka acknowledged the events (durable), or once they are queued (INGEST_ACK=queued). With a
   * tag (an Idempotency-Key's digests) they travel as one keyed entry, which the worker counts at most once.
   */
  publish(events: readonly ViewEvent[], tag?: KeyTag): Promise<void>;
  /** The partition count batches are built for (read from the broker at start). */
  setPartitions(n: number): void;
  /** Stops taking events and waits until every accepted one is acknowledged or failed. */
  close(timeoutMs?: number): Promise<void>;
}

interface Entry {
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

const FAILURE_LOG_MS = 5000;
const BY_PRODUCT: Placement = { by: "product" };

export interface ProducerDeps {
  /** A fresh producer for a lane; by default a librdkafka producer (kafka/ffi-producer.ts). */
  newLane?: () => Lane;
  /** Where librdkafka's own log lines and errors go (rate-limited); by default the producer's logger. */
  librdkafkaLog?: Logger;
  /** The acceptance clock (epoch ms); tests pass their own to place views in chosen minutes. */
  now?: () => number;
}

/** A lane whose batches failed this many times in a row gets a new producer (see retire below). */
export const LANE_FAILURES_BEFORE_RENEW = 3;
export const unavailable = (message: string, written: Written, cause?: unknown) =>
  new AppError("ingest_unavailable", message, { retryable: true, cause, details: { written } });

export function createProducer(
  kafka: KafkaConfig,
  config: ProducerConfig,
  log: Logger,
  metrics: Registry,
  deps: ProducerDeps = {},
): ViewProducer {
  const now = deps.now ?? Date.now;
  const { produced, messagesSent, deliveryErrors, rejected, lanesRenewed, requestsPerMessage } = producerMetrics(metrics);

  // A request's deadline splits into: time queued here (half), librdkafka's message timeout (half), and ~1 s
  // for librdkafka's timeout scan, which runs about once a second. At the deadline itself the request is
  // answered 503 whatever happened (the sweep below).
  const budgetMs = config.deliveryTimeoutMs - 1000;
  const messageTimeoutMs = Math.round(budgetMs / 2);
  const queueBudgetMs = budgetMs - messageTimeoutMs;

  const librdkafka = librdkafkaLanes(kafka, config, messageTimeoutMs, deps.librdkafkaLog ?? log);
  const newLane = deps.newLane ?? librdkafka.newLane;
  // failuresInRow: batches that failed in a row on this lane's producer, across runs of the lane.
  const idleLanes: { producer: Lane; failuresInRow: number }[] = Array.from({ length: config.lanes }, () => ({
    producer: newLane(),
    failuresInRow: 0,
  }));
  metrics.gauge("producer_queue_depth", "View items (product, count) accepted and not yet acknowledged", () => inFlightItems);

  let partitions = kafka.partitions;
  /** Round-robin: where the next batch's first message goes (lane-batch.ts says why windows take partitions in turn). */
  let nextPartition = 0;
  const queue: Entry[] = [];
  const sending = new Set<Entry[]>();
  let inFlightItems = 0;
  let closing = false;
  let drained: (() => void) | null = null;
  // After a failed batch, refuse new events for a moment instead of letting them wait out a full timeout.
  let openUntil = 0;
  // An outage fails a batch, and renews lanes, every few windows: one line per FAILURE_LOG_MS each, with how many
  // it stands for ("suppressed").
  const failureLog = limitedLog(log, FAILURE_LOG_MS);
  const renewLog = limitedLog(log, FAILURE_LOG_MS);

  function settle(e: Entry, outcome: Outcome) {
    inFlightItems -= e.items;
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
    if (drained && inFlightItems === 0) drained();
  }

  function dropStale() {
    const stale = performance.now() - queueBudgetMs;
    let i = 0;
    while (i < queue.length && queue[i]!.enqueuedAt < stale) i++;
    if (i === 0) return;
    // Too late to be confirmed within its deadline: refused now, never sent.
    for (const e of queue.splice(0, i)) {
      rejected.inc(undefined, e.views);
      settle(e, { ok: false, written: "no", reason: "queued past its deadline" });
    }
  }

  function answer(batch: Outgoing<Entry>[], outcomes: Outcome[]): number {
    let failed = 0;
    batch.forEach((m, i) => {
      const o = outcomes[i]!;
      const views = m.entries.reduce((n, e) => n + e.views, 0);
      if (o.ok) {
        produced.inc(undefined, views);
        messagesSent.inc();
      } else {
        failed++;
        deliveryErrors.inc({ written: o.written }, views);
      }
      for (const e of m.entries) settle(e, o);
    });
    return failed;
  }

  function noteFailure(failed: number, messages: number, outcomes: Outcome[], sendError: unknown) {
    openUntil = performance.now() + 1000;
    const first = outcomes.find((o): o is Extract<Outcome, { ok: false }> => !o.ok);
    failureLog(
      "warn",
      { failed, messages, reason: first?.reason, err: sendError ?? undefined },
      "kafka did not acknowledge every message of a batch",
    );
  }

  /** One batch through a free lane; the lane is free again afterwards and the next window starts (kick). */
  async function runLane(lane: { producer: Lane; failuresInRow: number }): Promise<void> {
    dropStale();
    if (queue.length === 0) {
      idleLanes.push(lane);
      return;
    }
    const place: Placement = config.partitioner === "product" ? BY_PRODUCT : { by: "round-robin", first: nextPartition };
    const batch = takeBatch(queue, partitions, MAX_MESSAGE_ITEMS, place);
    nextPartition = (nextPartition + batch.length) % partitions;
    const entries = batch.flatMap((m) => m.entries);
    sending.add(entries);
    for (const m of batch) requestsPerMessage.observe(m.entries.length);
    let c: Cycle;
    try {
      c = await cycle(lane.producer, kafka.topic, batch, messageTimeoutMs + 2000, log);
    } catch (err) {
      // Nothing here is expected to throw; if it does, the batch is answered and the lane lives on.
      log.error({ err }, "a producer lane failed unexpectedly; its batch is answered 503 and the lane renewed");
      c = { outcomes: allOf(batch, "unknown", "producer lane failed"), sendError: err, retire: "lane error" };
    }
    const failed = answer(batch, c.outcomes);
    sending.delete(entries);
    const failedBatch = failed > 0 || c.sendError !== null;
    if (failedBatch) noteFailure(failed, batch.length, c.outcomes, c.sendError);
    // A producer can fail for good while Kafka is fine (librdkafka's idempotent producer raises fatal errors
    // after some broker restarts, and then refuses every message); a fresh producer costs one connection,
    // so a lane whose batches keep failing gets one, as does a lane whose producer cannot be trusted.
    lane.failuresInRow = failedBatch ? lane.failuresInRow + 1 : 0;
    const retire = c.retire ?? (lane.failuresInRow >= LANE_FAILURES_BEFORE_RENEW ? "failing in a row" : null);
    if (retire) {
      lanesRenewed.inc({ reason: retire });
      renewLog("warn", { reason: retire, inFlight: safeInFlight(lane.producer) }, "renewing a producer lane");
      try {
        const old = lane.producer;
        lane.producer = newLane();
        old.close?.();
      } catch (err) {
        // Creating a producer does not touch the network; if it fails anyway, the lane keeps its old one.
        log.error({ err }, "could not create a producer for a lane; it keeps its old one");
      }
      lane.failuresInRow = 0;
    }
    idleLanes.push(lane);
    kick();
  }

  let windowTimer: ReturnType<typeof setTimeout> | null = null;
  /** Starts a free lane once the oldest queued request is a window old (at once when a full message's worth of requests waits). */
  function kick() {
    if (windowTimer !== null || idleLanes.length === 0 || queue.length === 0) return;
    const wait = queue[0]!.enqueuedAt + config.lingerMs - performance.now();
    if (wait > 0 && queue.length < MAX_MESSAGE_ITEMS) {
      windowTimer = setTimeout(() => {
        windowTimer = null;
        kick();
      }, wait);
      return;
    }
    // runLane takes its batch before its first await: the next lane, if any, only finds what did not fit.
    while (idleLanes.length > 0 && queue.length > 0) void runLane(idleLanes.pop()!);
  }

  // No request waits past its deadline: queued events that never left are dropped and answered 503 (not
  // written); events already handed to librdkafka are answered 503 "unknown" (they may still land).
  const sweeper = setInterval(() => {
    dropStale();
    const limit = performance.now() - config.deliveryTimeoutMs;
    for (const entries of sending) {
      for (const e of entries) {
        if (e.answered || e.enqueuedAt >= limit) continue;
        e.answered = true;
        e.reject(unavailable("kafka did not confirm the view in time; retry later", "unknown"));
      }
    }
  }, 50);
  sweeper.unref();

  function refuse(events: readonly ViewEvent[], message: string): Promise<void> {
    rejected.inc(undefined, viewCount(events));
    return Promise.reject(unavailable(message, "no"));
  }

  return {
    setPartitions(n) {
      if (n > 0) partitions = n;
    },
    publish(events, tag) {
      if (closing) return refuse(events, "the service is shutting down");
      const items = events.length;
      if (inFlightItems + items > config.maxInFlight) return refuse(events, "too many views in flight; retry later");
      if (performance.now() < openUntil && inFlightItems > 0) return refuse(events, "the event stream is unavailable; retry later");
      inFlightItems += items;
      const views = viewCount(events);
      const p = new Promise<void>((resolve, reject) => {
        queue.push({ events, tag, views, items, enqueuedAt: performance.now(), at: tag?.at ?? now(), answered: false, resolve, reject });
      });
      kick();
      if (config.ackMode === "queued") {
        p.catch(() => {}); // counted in producer_delivery_errors_total
        return Promise.resolve();
      }
      return p;
    },
    async close(timeoutMs = config.deliveryTimeoutMs + 3000) {
      closing = true;
      if (inFlightItems > 0) {
        await withDeadline(new Promise<void>((r) => (drained = r)), timeoutMs);
      }
      clearInterval(sweeper);
      librdkafka.close();
      // Lanes still sending keep their producer: a wedged one's process is about to end anyway.
      for (const lane of idleLanes) lane.producer.close?.();
      if (inFlightItems > 0) log.error({ inFlight: inFlightItems, queued: queue.length }, "producer closed with views unconfirmed");
    },
  };
}
