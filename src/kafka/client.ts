import type { KafkaConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../metrics.ts";
import { createFfiConsumer, type FfiConsumer } from "./ffi-consumer.ts";
import { createLogLimiter, levelOf } from "./log-limiter.ts";
import { librdkafkaVersion } from "./rdkafka.ts";
import { librdkafkaSecurity } from "./security.ts";

// The worker's librdkafka consumer (ffi-consumer.ts), as the API's producer lanes make theirs (ingest/producer.ts):
// the brokers, the client id, TLS and SASL, and librdkafka's log lines and errors through one rate-limited logger;
// with KAFKA_DEBUG, its debug output for the contexts named.

export function createConsumer(
  kafka: KafkaConfig,
  clientId: string,
  configuration: Record<string, string | number | boolean>,
  log: Logger,
  opts: { headers?: boolean } = {},
): FfiConsumer {
  const native = createLogLimiter(log, { raw: kafka.debug !== "" });
  return createFfiConsumer(
    {
      "bootstrap.servers": kafka.brokers.join(","),
      "client.id": clientId,
      // Errors only, unless KAFKA_DEBUG names contexts (then everything).
      log_level: kafka.debug ? 7 : 3,
      ...(kafka.debug ? { debug: kafka.debug } : {}),
      ...librdkafkaSecurity(kafka.security),
      ...configuration,
    },
    {
      log: (level, facility, text) => native.log(levelOf(level), { facility }, text, performance.now()),
      error: (code, message, fatal) => native.log(fatal ? "error" : "warn", { code, fatal }, message, performance.now()),
    },
    opts,
  );
}

/**
 * Loads librdkafka, so a missing or too old one stops the process at start with what to do (rdkafka.ts), and
 * exports its version: kafka_client_info{librdkafka="2.16.0"} 1.
 */
export function registerClientInfo(metrics: Registry): string {
  const version = librdkafkaVersion();
  metrics
    .gauge("kafka_client_info", "The Kafka client library this process runs (librdkafka through bun:ffi)")
    .set(1, { librdkafka: version });
  return version;
}
