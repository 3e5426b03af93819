import type { Registry } from "../metrics.ts";

/** The consume loop's counters and histograms (worker/consumer.ts), registered once per worker. */
export function consumerMetrics(metrics: Registry) {
  return {
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
}

export type ConsumerMetrics = ReturnType<typeof consumerMetrics>;

/** The loop's gauges, read at scrape time. */
export function consumerGauges(metrics: Registry, m: ConsumerMetrics, read: { pending(): number; paused(): boolean }) {
  metrics.gauge("worker_pending_products", "Distinct products waiting for the next flush", read.pending);
  metrics.gauge("worker_paused", "1 while fetching is paused for a flush backlog", () => (read.paused() ? 1 : 0));
  metrics.gauge("worker_coalescing_ratio", "Views applied per row updated (higher is cheaper)", () => {
    const rows = m.rows.get();
    return rows === 0 ? 0 : m.views.get() / rows;
  });
}
