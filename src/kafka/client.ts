import { KafkaClient } from "kafka-crab-js";
import type { KafkaConfig } from "../config.ts";

// The worker's librdkafka consumer, through kafka-crab-js (the API's producer calls librdkafka itself:
// ffi-producer.ts). Its log lines reach stdout through kafka-crab-js; with KAFKA_DEBUG they include the named
// debug contexts, else errors only.

export function librdkafkaClient(kafka: KafkaConfig, clientId: string): KafkaClient {
  return new KafkaClient({ brokers: kafka.brokers.join(","), clientId, logLevel: kafka.debug ? "debug" : "error" });
}

/** Spread into a client's `configuration`: librdkafka's `debug` property, only when contexts were named. */
export function debugContexts(kafka: KafkaConfig): { debug?: string } {
  return kafka.debug ? { debug: kafka.debug } : {};
}
