import type { Registry } from "../metrics.ts";

/** The producer's counters (ingest/producer.ts), registered once per API process. */
export function producerMetrics(metrics: Registry) {
  return {
    produced: metrics.counter("views_produced_total", "Views acknowledged by Kafka"),
    messagesSent: metrics.counter(
      "producer_messages_total",
      "Kafka messages produced (one per window and partition it touches: one, unless KAFKA_PARTITIONER=product or over 4 000 products)",
    ),
    deliveryErrors: metrics.counter(
      "producer_delivery_errors_total",
      "Views Kafka did not acknowledge, by whether they may have been written",
    ),
    rejected: metrics.counter("producer_rejected_total", "Views refused before Kafka (queue full, timeout, shutting down)"),
    lanesRenewed: metrics.counter("producer_lanes_renewed_total", "Producer lanes given a new librdkafka producer, by reason"),
    requestsPerMessage: metrics.histogram(
      "producer_requests_per_message",
      "Requests merged into one Kafka message",
      [1, 2, 5, 10, 50, 100, 1000],
    ),
  };
}
export type ProducerMetrics = ReturnType<typeof producerMetrics>;
