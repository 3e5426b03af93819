import type { KafkaConfig, ProducerConfig } from "../config.ts";
import { withDeadline } from "../deadline.ts";
import { limitedLog, type Logger } from "../log.ts";
import type { Registry } from "../metrics.ts";
import { MAX_MESSAGE_ITEMS, type ViewEvent, viewCount } from "../domain/view.ts";
import { takeBatch, type KeyTag, type Outcome, type Outgoing, type Placement } from "./lane-batch.ts";
import { allOf, type Cycle, cycle, type Lane } from "./lane-cycle.ts";
import { createInFlight, type Entry, type InFlight, unavailable } from "./in-flight.ts";
import { createLanes, type LaneSlot } from "./lanes.ts";
import { librdkafkaLanes } from "./librdkafka-lane.ts";
import { producerMetrics, type ProducerMetrics } from "./producer-metrics.ts";

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

export function createProducer(
  kafka: KafkaConfig,
  config: ProducerConfig,
  log: Logger,
  metrics: Registry,
  deps: ProducerDeps = {},
): ViewProducer {
  const now = deps.now ?? Date.now;
  const m = producerMetrics(metrics);
  // A request's deadline splits into: time queued here (half), librdkafka's message timeout (half), and ~1 s
  // for librdkafka's timeout scan, which runs about once a second. At the deadline itself the request is
  // answered 503 whatever happened (the sweep).
  const budgetMs = config.deliveryTimeoutMs - 1000;
  const messageTimeoutMs = Math.round(budgetMs / 2);
  const flight = createInFlight(config.deliveryTimeoutMs, budgetMs - messageTimeoutMs, (e) => m.rejected.inc(undefined, e.views));
  const librdkafka = librdkafkaLanes(kafka, config, messageTimeoutMs, deps.librdkafkaLog ?? log);
  const lanes = createLanes(config.lanes, deps.newLane ?? librdkafka.newLane, m.lanesRenewed, log);
  metrics.gauge("producer_queue_depth", "View items (product, count) accepted and not yet acknowledged", () => flight.items());
  const run = laneRunner(kafka, config, flight, lanes, messageTimeoutMs, m, log, () => kick());
  const kick = windows(config.lingerMs, flight.queue, lanes.idle, run);
  const sweeper = setInterval(flight.sweep, 50);
  sweeper.unref();
  let closing = false;

  function refuse(events: readonly ViewEvent[], message: string): Promise<void> {
    m.rejected.inc(undefined, viewCount(events));
    return Promise.reject(unavailable(message, "no"));
  }

  return {
    setPartitions: run.setPartitions,
    publish(events, tag) {
      if (closing) return refuse(events, "the service is shutting down");
      const items = events.length;
      if (flight.items() + items > config.maxInFlight) return refuse(events, "too many views in flight; retry later");
      if (run.isOpen() && flight.items() > 0) return refuse(events, "the event stream is unavailable; retry later");
      const p = new Promise<void>((resolve, reject) => {
        const at = tag?.at ?? now();
        flight.add({ events, tag, views: viewCount(events), items, enqueuedAt: performance.now(), at, answered: false, resolve, reject });
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
      if (flight.items() > 0) await withDeadline(flight.drained(), timeoutMs);
      clearInterval(sweeper);
      librdkafka.close();
      lanes.closeIdle();
      if (flight.items() > 0)
        log.error({ inFlight: flight.items(), queued: flight.queue.length }, "producer closed with views unconfirmed");
    },
  };
}

/**
 * The batching window: a free lane starts once the oldest queued request is a window old (at once when a full
 * message's worth of requests waits).
 */
function windows(lingerMs: number, queue: Entry[], idle: LaneSlot[], run: (lane: LaneSlot) => Promise<void>) {
  let timer: ReturnType<typeof setTimeout> | null = null;
  return function kick() {
    if (timer !== null || idle.length === 0 || queue.length === 0) return;
    const wait = queue[0]!.enqueuedAt + lingerMs - performance.now();
    if (wait > 0 && queue.length < MAX_MESSAGE_ITEMS) {
      timer = setTimeout(() => {
        timer = null;
        kick();
      }, wait);
      return;
    }
    // A run takes its batch before its first await: the next lane, if any, only finds what did not fit.
    while (idle.length > 0 && queue.length > 0) void run(idle.pop()!);
  };
}

/** One batch through a free lane; the lane is free again afterwards and the next window starts (`next`). */
function laneRunner(
  kafka: KafkaConfig,
  config: ProducerConfig,
  flight: InFlight,
  lanes: ReturnType<typeof createLanes>,
  messageTimeoutMs: number,
  m: ProducerMetrics,
  log: Logger,
  next: () => void,
) {
  let partitions = kafka.partitions;
  /** Round-robin: where the next batch's first message goes (lane-batch.ts says why windows take partitions in turn). */
  let nextPartition = 0;
  // After a failed batch, refuse new events for a moment instead of letting them wait out a full timeout.
  let openUntil = 0;
  // An outage fails a batch every few windows: one line per FAILURE_LOG_MS, with how many it stands for.
  const failureLog = limitedLog(log, FAILURE_LOG_MS);

  async function run(lane: LaneSlot): Promise<void> {
    flight.dropStale();
    if (flight.queue.length === 0) {
      lanes.idle.push(lane);
      return;
    }
    const place: Placement = config.partitioner === "product" ? BY_PRODUCT : { by: "round-robin", first: nextPartition };
    const batch = takeBatch(flight.queue, partitions, MAX_MESSAGE_ITEMS, place);
    nextPartition = (nextPartition + batch.length) % partitions;
    const entries = batch.flatMap((b) => b.entries);
    flight.sending(entries);
    for (const b of batch) m.requestsPerMessage.observe(b.entries.length);
    let c: Cycle;
    try {
      c = await cycle(lane.producer, kafka.topic, batch, messageTimeoutMs + 2000, log);
    } catch (err) {
      // Nothing here is expected to throw; if it does, the batch is answered and the lane lives on.
      log.error({ err }, "a producer lane failed unexpectedly; its batch is answered 503 and the lane renewed");
      c = { outcomes: allOf(batch, "unknown", "producer lane failed"), sendError: err, retire: "lane error" };
    }
    const failed = answer(batch, c.outcomes, flight, m);
    flight.sent(entries);
    const failedBatch = failed > 0 || c.sendError !== null;
    if (failedBatch) {
      openUntil = performance.now() + 1000;
      const first = c.outcomes.find((o): o is Extract<Outcome, { ok: false }> => !o.ok);
      const context = { failed, messages: batch.length, reason: first?.reason, err: c.sendError ?? undefined };
      failureLog("warn", context, "kafka did not acknowledge every message of a batch");
    }
    lanes.release(lane, failedBatch, c.retire);
    next();
  }
  return Object.assign(run, {
    setPartitions(n: number) {
      if (n > 0) partitions = n;
    },
    isOpen: () => performance.now() < openUntil,
  });
}

/** Each message's outcome to its requests; returns how many messages failed. */
function answer(batch: Outgoing<Entry>[], outcomes: Outcome[], flight: InFlight, m: ProducerMetrics): number {
  let failed = 0;
  batch.forEach((b, i) => {
    const o = outcomes[i]!;
    const views = b.entries.reduce((n, e) => n + e.views, 0);
    if (o.ok) {
      m.produced.inc(undefined, views);
      m.messagesSent.inc();
    } else {
      failed++;
      m.deliveryErrors.inc({ written: o.written }, views);
    }
    for (const e of b.entries) flight.settle(e, o);
  });
  return failed;
}
