import { KafkaClient, type KafkaProducer, type MessageProducer } from "kafka-crab-js";
import type { KafkaConfig, ProducerConfig } from "../config.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../metrics.ts";
import { encodeViewEvents, type ViewEvent } from "../domain/view.ts";

// Why lanes: kafka-crab-js confirms a send() only through flush(), and flush() waits in ~100 ms steps while
// anything is in flight, but answers at once when nothing is. So each lane owns one librdkafka producer and
// one batch at a time: it enqueues the batch (librdkafka lingers and compresses), watches inFlightCount()
// fall to zero (1 ms polls), then flush() hands back exactly that batch's delivery reports. Requests that
// arrive meanwhile queue up and ride the next free lane, so batches grow with load and latency stays ~linger.

export interface ViewProducer {
  /** Resolves once Kafka acknowledged every event (durable), or once they are queued (INGEST_ACK=queued). */
  publish(events: readonly ViewEvent[]): Promise<void>;
  /** Stops taking events and waits until every accepted one is acknowledged or failed. */
  close(timeoutMs?: number): Promise<void>;
}

interface Entry {
  messages: MessageProducer[];
  enqueuedAt: number;
  /** Answered already (by the deadline sweep); the lane's later report only updates the accounting. */
  answered: boolean;
  resolve(): void;
  reject(e: AppError): void;
}

/**
 * One message per event, except that the events of one call sharing a partition go as one grouped message:
 * a batch request of 100 views then costs at most one message per partition instead of ~60.
 * librdkafka's default partitioner (consistent_random) picks CRC-32(key) % partitions, so a group keyed by
 * its first product's id lands exactly where each of its products would have gone alone.
 */
export function toMessages(events: readonly ViewEvent[], partitions: number): MessageProducer[] {
  if (events.length === 1) {
    const e = events[0]!;
    return [{ key: Buffer.from(e.product_id), payload: encodeViewEvents(events) }];
  }
  const groups = new Map<number, ViewEvent[]>();
  for (const e of events) {
    const p = Bun.hash.crc32(e.product_id) % partitions;
    const g = groups.get(p);
    if (g) g.push(e);
    else groups.set(p, [e]);
  }
  return [...groups.values()].map((g) => ({ key: Buffer.from(g[0]!.product_id), payload: encodeViewEvents(g) }));
}

const unavailable = (message: string, cause?: unknown) =>
  new AppError("ingest_unavailable", message, { retryable: true, cause });

export function createProducer(
  kafka: KafkaConfig,
  config: ProducerConfig,
  log: Logger,
  metrics: Registry,
): ViewProducer {
  const produced = metrics.counter("views_produced_total", "View events acknowledged by Kafka");
  const deliveryErrors = metrics.counter("producer_delivery_errors_total", "View events Kafka did not acknowledge");
  const rejected = metrics.counter("producer_rejected_total", "View events refused before Kafka (queue full, timeout)");
  const batchSize = metrics.histogram("producer_batch_messages", "Messages per producer batch", [1, 10, 100, 1000, 10000]);

  // A view's deadline splits into: time queued here (half), librdkafka's message timeout (half), and ~1 s for
  // librdkafka's timeout scan, which runs about once a second. At the deadline itself the view is answered 503
  // whatever happened (the sweep below): by then librdkafka has normally failed it for good.
  const budgetMs = config.deliveryTimeoutMs - 1000;
  const messageTimeoutMs = Math.round(budgetMs / 2);
  const queueBudgetMs = budgetMs - messageTimeoutMs;

  const client = new KafkaClient({ brokers: kafka.brokers.join(","), clientId: kafka.clientId, logLevel: "error" });
  const lanes: KafkaProducer[] = Array.from({ length: config.lanes }, () =>
    client.createProducer({
      autoFlush: false,
      // flush() is only called once nothing is in flight (or past the deadline), so it never needs long.
      queueTimeout: 1000,
      configuration: {
        "linger.ms": config.lingerMs,
        "batch.num.messages": config.batchMaxMessages,
        "compression.type": config.compression,
        acks: "all",
        "enable.idempotence": true,
        // librdkafka settles every message (delivered or failed) before the request's deadline, so a 503 at
        // the deadline is a real failure, not a view that lands later.
        "message.timeout.ms": messageTimeoutMs,
        "queue.buffering.max.messages": Math.max(config.maxInFlight, 1000),
        // librdkafka's default is 1 GiB per producer; bounded in-flight views need a few MiB.
        "queue.buffering.max.kbytes": 32768,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 1000,
      },
    }),
  );
  metrics.gauge("producer_queue_depth", "View events accepted and not yet acknowledged", () => inFlightCount);

  const queue: Entry[] = [];
  let queuedMessages = 0;
  let inFlightCount = 0;
  let idleLanes = lanes.slice();
  let closing = false;
  let drained: (() => void) | null = null;
  // After a failed batch, refuse new events for a moment instead of letting them wait out a full timeout.
  let openUntil = 0;

  function answer(e: Entry, error: AppError | null) {
    if (e.answered) return;
    e.answered = true;
    if (error) e.reject(error);
    else e.resolve();
  }

  function settle(entries: Entry[], error: AppError | null) {
    for (const e of entries) {
      inFlightCount -= e.messages.length;
      answer(e, error);
    }
    if (drained && inFlightCount === 0) drained();
  }

  function take(): { entries: Entry[]; messages: MessageProducer[] } {
    const entries: Entry[] = [];
    const messages: MessageProducer[] = [];
    const stale = performance.now() - queueBudgetMs;
    while (queue.length > 0 && messages.length < config.batchMaxMessages) {
      const e = queue.shift()!;
      queuedMessages -= e.messages.length;
      if (e.enqueuedAt < stale) {
        // Too late to be confirmed within its deadline: refuse it now rather than send it and answer 503
        // while it might still land.
        rejected.inc(undefined, e.messages.length);
        settle([e], unavailable("the event stream did not accept the view in time; retry later"));
        continue;
      }
      entries.push(e);
      for (const m of e.messages) messages.push(m);
    }
    return { entries, messages };
  }

  const sending = new Set<Entry[]>();

  async function runLane(lane: KafkaProducer): Promise<void> {
    while (queue.length > 0) {
      const { entries, messages } = take();
      if (entries.length === 0) continue;
      sending.add(entries);
      batchSize.observe(messages.length);
      try {
        await lane.send({ topic: kafka.topic, messages });
        const deadline = performance.now() + config.deliveryTimeoutMs + 2000;
        while (lane.inFlightCount() > 0 && performance.now() < deadline) await Bun.sleep(1);
        const reports = await lane.flush();
        const failed = reports.filter((r) => r.error).length + Math.max(0, messages.length - reports.length);
        if (failed > 0) {
          // Reports carry no message identity, so one failure fails the batch: no 202 for an unconfirmed event.
          deliveryErrors.inc(undefined, failed);
          produced.inc(undefined, messages.length - failed);
          const first = reports.find((r) => r.error)?.error;
          openUntil = performance.now() + 1000;
          log.warn({ failed, batch: messages.length, error: first?.message }, "kafka did not acknowledge a batch");
          settle(entries, unavailable("the event stream is unavailable; retry later", first));
        } else {
          produced.inc(undefined, messages.length);
          settle(entries, null);
        }
      } catch (err) {
        deliveryErrors.inc(undefined, messages.length);
        openUntil = performance.now() + 1000;
        log.warn({ err, batch: messages.length }, "producer send failed");
        settle(entries, unavailable("the event stream is unavailable; retry later", err));
      }
      sending.delete(entries);
    }
    idleLanes.push(lane);
  }

  function kick() {
    while (idleLanes.length > 0 && queue.length > 0) void runLane(idleLanes.pop()!);
  }

  // No request waits past its deadline: queued events that never left are dropped and answered 503; events
  // already handed to librdkafka are answered 503 too (they may still land: 503 means "not confirmed").
  const sweeper = setInterval(() => {
    const limit = performance.now() - config.deliveryTimeoutMs;
    const stale = performance.now() - queueBudgetMs;
    while (queue.length > 0 && queue[0]!.enqueuedAt < stale) {
      const e = queue.shift()!;
      queuedMessages -= e.messages.length;
      rejected.inc(undefined, e.messages.length);
      settle([e], unavailable("the event stream did not accept the view in time; retry later"));
    }
    for (const entries of sending) {
      for (const e of entries) {
        if (!e.answered && e.enqueuedAt < limit) answer(e, unavailable("kafka did not confirm the view in time; retry later"));
      }
    }
  }, 50);
  sweeper.unref();

  return {
    publish(events) {
      if (closing) return Promise.reject(unavailable("the service is shutting down"));
      if (inFlightCount + events.length > config.maxInFlight) {
        rejected.inc(undefined, events.length);
        return Promise.reject(unavailable("too many views in flight; retry later"));
      }
      if (openUntil > 0 && performance.now() < openUntil && inFlightCount > 0) {
        rejected.inc(undefined, events.length);
        return Promise.reject(unavailable("the event stream is unavailable; retry later"));
      }
      const messages = toMessages(events, kafka.partitions);
      inFlightCount += messages.length;
      queuedMessages += messages.length;
      const p = new Promise<void>((resolve, reject) => {
        queue.push({ messages, enqueuedAt: performance.now(), answered: false, resolve, reject });
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
      if (inFlightCount > 0) {
        await Promise.race([new Promise<void>((r) => (drained = r)), Bun.sleep(timeoutMs)]);
      }
      clearInterval(sweeper);
      if (inFlightCount > 0) log.error({ inFlight: inFlightCount, queued: queuedMessages }, "producer closed with events unconfirmed");
    },
  };
}
