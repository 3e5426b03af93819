import { KafkaClient, type KafkaConsumer, type KafkaEvent, type Message } from "kafka-crab-js";
import type { KafkaConfig, WorkerConfig } from "../config.ts";
import type { Db } from "../db/client.ts";
import { isUnavailable } from "../db/client.ts";
import { decodeViewEvents } from "../domain/view.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../metrics.ts";
import { createCoalescer, type Batch } from "./coalescer.ts";
import { flush, loadOffsets, sampleUnknown } from "./writer.ts";

// The worker's loop: fetch a batch of messages, coalesce them in memory, and let a separate flush loop
// persist what has accumulated every flushIntervalMs (or sooner when flushMaxProducts is reached).
// Exactly-once effect: Postgres holds counts and offsets together; Kafka's committed offset trails them and
// only serves to start fetching near the right place and to show lag.

export interface ViewConsumer {
  stop(): Promise<void>;
  /** Resolves when the consumer has joined the group and fetched for the first time. */
  ready: Promise<void>;
}

export function startConsumer(
  kafka: KafkaConfig,
  config: WorkerConfig,
  db: Db,
  log: Logger,
  metrics: Registry,
): ViewConsumer {
  const m = {
    consumed: metrics.counter("worker_messages_total", "Messages read from Kafka, by outcome"),
    flushes: metrics.counter("worker_flushes_total", "Flush transactions committed"),
    fetchFailures: metrics.counter("worker_fetch_failures_total", "Kafka fetches that failed and were retried"),
    flushFailures: metrics.counter("worker_flush_failures_total", "Flush attempts that failed and will be retried"),
    flushSeconds: metrics.histogram("worker_flush_duration_seconds", "Flush transaction duration", [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5]),
    flushProducts: metrics.histogram("worker_flush_products", "Distinct products per flush", [1, 10, 100, 1000, 10000, 100000]),
    views: metrics.counter("worker_views_applied_total", "Views added to view_count"),
    rows: metrics.counter("worker_rows_updated_total", "Product rows updated"),
    unknown: metrics.counter("worker_unknown_products_total", "Distinct unknown product ids per flush, summed"),
    fenced: metrics.counter("worker_partitions_fenced_total", "Slices dropped because another worker moved the partition's offset"),
    pending: metrics.gauge("worker_pending_products", "Distinct products waiting for the next flush", () => coalescer.size()),
    paused: metrics.gauge("worker_paused", "1 while consumption is paused for a flush backlog", () => (paused ? 1 : 0)),
  };
  metrics.gauge("worker_coalescing_ratio", "Views applied per row updated (higher is cheaper)", () => {
    const rows = m.rows.get();
    return rows === 0 ? 0 : m.views.get() / rows;
  });

  const coalescer = createCoalescer();
  const client = new KafkaClient({ brokers: kafka.brokers.join(","), clientId: `${kafka.clientId}-worker`, logLevel: "error" });
  const consumer: KafkaConsumer = client.createConsumer({
    groupId: config.groupId,
    enableAutoCommit: false,
    configuration: {
      "auto.offset.reset": "earliest",
      "enable.auto.offset.store": false,
      "session.timeout.ms": 6000,
      "heartbeat.interval.ms": 1000,
      "max.poll.interval.ms": 60_000,
      "fetch.wait.max.ms": 50,
      // Prefetch bounded well below librdkafka's 64 MiB default: the worker's RSS stays small and flat.
      "queued.max.messages.kbytes": 16384,
      "fetch.max.bytes": 8 * 1024 * 1024,
      "reconnect.backoff.max.ms": 1000,
    },
  });

  let stopping = false;
  let paused = false;
  let inFlight: Batch | null = null;
  let lastUnknownLog = 0;
  const committed = new Map<number, number>();
  const readyDeferred = Promise.withResolvers<void>();

  consumer.onEvents((error, event: KafkaEvent) => {
    if (error) {
      log.warn({ err: error }, "consumer event error");
      return;
    }
    if (event.name !== "PreRebalance" && event.name !== "PostRebalance") return;
    // Whatever we held for a moving partition is dropped, not flushed: the next owner (maybe us again) replays
    // from Kafka's committed offset, and Postgres' stored offset skips what was already counted.
    const parts = event.payload.tpl.filter((t) => t.topic === kafka.topic).flatMap((t) => t.partitionOffset.map((p) => p.partition));
    for (const p of parts) coalescer.drop(p);
    if (parts.length) log.info({ event: event.name, action: event.payload.action, partitions: parts }, "rebalance");
  });

  async function ensureBases(messages: Message[]) {
    const missing = [...new Set(messages.filter((x) => !coalescer.hasBase(x.partition)).map((x) => x.partition))];
    if (missing.length === 0) return;
    for (let attempt = 0; ; attempt++) {
      try {
        const stored = await loadOffsets(db, kafka.topic, missing);
        for (const [p, next] of stored) if (!coalescer.hasBase(p)) coalescer.setBase(p, next);
        return;
      } catch (err) {
        if (stopping) throw err;
        if (attempt === 0) log.warn({ err }, "cannot read stored offsets; retrying");
        await Bun.sleep(backoff(attempt));
      }
    }
  }

  async function consumeLoop() {
    await consumer.subscribe(kafka.topic);
    let first = true;
    let fetchFailures = 0;
    while (!stopping) {
      if (coalescer.size() >= config.maxPendingProducts) {
        // Postgres is behind (or away): hold memory bounded by not fetching until a flush drains the map.
        if (!paused) {
          paused = true;
          consumer.pause();
          log.warn({ pending: coalescer.size() }, "pending map full; consumption paused");
        }
        await Bun.sleep(20);
        continue;
      }
      if (paused) {
        paused = false;
        consumer.resume();
        log.info("consumption resumed");
      }
      let messages: Message[];
      try {
        messages = await consumer.recvBatch(config.fetchBatchSize, 100);
        fetchFailures = 0;
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
      await ensureBases(messages);
      for (const msg of messages) {
        const result = coalescer.add(msg.partition, msg.offset, decodeViewEvents(msg.payload));
        m.consumed.inc({ outcome: result });
        if (result === "malformed") log.warn({ partition: msg.partition, offset: msg.offset }, "malformed message skipped");
      }
      if (coalescer.size() >= config.flushMaxProducts) wake();
    }
  }

  let wakeFlusher: (() => void) | null = null;
  function wake() {
    wakeFlusher?.();
  }

  /** "empty": nothing to write; "failed": the batch is kept and retried next time. */
  async function flushOnce(): Promise<"ok" | "empty" | "failed"> {
    if (!inFlight) inFlight = coalescer.take();
    const batch = inFlight;
    if (!batch) return "empty";
    const t0 = performance.now();
    try {
      const res = await flush(db, kafka.topic, batch);
      inFlight = null;
      m.flushSeconds.observe((performance.now() - t0) / 1000);
      m.flushes.inc();
      m.flushProducts.observe(batch.products);
      m.views.inc(undefined, res.views);
      m.rows.inc(undefined, res.rowsUpdated);
      if (res.unknownProducts > 0) void reportUnknown(batch, res.unknownProducts);
      for (const f of res.fenced) {
        m.fenced.inc();
        coalescer.drop(f.partition);
        log.warn(f, "partition fenced: another worker advanced its offset; dropped our slice");
        try {
          // If we still own it, refetch from what is stored; late messages are ignored as gaps.
          if (f.stored >= 0) consumer.seek(kafka.topic, f.partition, { offset: f.stored }, 1000);
        } catch {
          // Not assigned to us any more: the owner carries on from the stored offset.
        }
      }
      commitToKafka(batch, new Set(res.fenced.map((f) => f.partition)));
      log.debug({ products: batch.products, views: res.views, ms: performance.now() - t0 }, "flushed");
      return "ok";
    } catch (err) {
      m.flushFailures.inc({ reason: isUnavailable(err) ? "database_unavailable" : "error" });
      log.warn({ err, products: batch.products }, "flush failed; will retry the same batch");
      return "failed";
    }
  }

  function commitToKafka(batch: Batch, fenced: Set<number>) {
    for (const s of batch.slices) {
      if (fenced.has(s.partition) || committed.get(s.partition) === s.next) continue;
      committed.set(s.partition, s.next);
      // Lag monitoring only; correctness rests on the offsets in Postgres.
      consumer.commit(kafka.topic, s.partition, s.next, "Async").catch((err) => log.debug({ err }, "kafka commit failed"));
    }
  }

  async function reportUnknown(batch: Batch, n: number) {
    m.unknown.inc(undefined, n);
    const now = performance.now();
    if (now - lastUnknownLog < 10_000) return;
    lastUnknownLog = now;
    const ids = batch.slices.flatMap((s) => [...s.counts.keys()]);
    const sample = await sampleUnknown(db, ids).catch(() => []);
    log.warn({ unknown: n, sample }, "views for unknown products were not counted");
  }

  async function flushLoop() {
    let failures = 0;
    while (!stopping) {
      await new Promise<void>((r) => {
        wakeFlusher = r;
        setTimeout(r, failures > 0 ? backoff(failures) : config.flushIntervalMs);
      });
      wakeFlusher = null;
      if (stopping) break;
      failures = (await flushOnce()) === "failed" ? failures + 1 : 0;
    }
  }

  const consuming = consumeLoop().catch((err) => {
    if (!stopping) log.fatal({ err }, "consume loop crashed");
    readyDeferred.reject(err);
    throw err;
  });
  const flushing = flushLoop();

  return {
    ready: readyDeferred.promise,
    async stop() {
      stopping = true;
      wake();
      await consuming.catch(() => {});
      await flushing;
      // Drain: the in-flight batch (if any) and then what is still pending, with a bounded number of tries.
      for (let i = 0; i < 10; i++) {
        const r = await flushOnce();
        if (r === "empty") break;
        if (r === "failed") await Bun.sleep(backoff(i));
      }
      if (inFlight || coalescer.size() > 0) log.error({ pending: coalescer.size() }, "stopped with views not flushed; they will be replayed");
      // unsubscribe() sends LeaveGroup, so the partitions move to the other workers at once instead of after
      // the session timeout; disconnect() alone leaves the membership to expire.
      consumer.unsubscribe();
      await Bun.sleep(200);
      await consumer.disconnect();
    },
  };
}

function backoff(attempt: number): number {
  return Math.min(100 * 2 ** attempt, 5000);
}
