import type { KafkaConfig, ProducerConfig } from "../config.ts";
import { createFfiProducer } from "../kafka/ffi-producer.ts";
import { createLogLimiter, levelOf } from "../kafka/log-limiter.ts";
import { librdkafkaSecurity } from "../kafka/security.ts";
import type { Logger } from "../log.ts";
import type { Lane } from "./lane-cycle.ts";

/** librdkafka's own linger: long enough that one send()'s messages leave in one produce request, no longer. */
const LIBRDKAFKA_LINGER_MS = 1;

/**
 * The lanes' librdkafka producers (kafka/ffi-producer.ts), with their settings, and librdkafka's own log lines
 * through pino, rate-limited (errors only, unless KAFKA_DEBUG names contexts: then everything, unlimited).
 */
export function librdkafkaLanes(kafka: KafkaConfig, config: ProducerConfig, messageTimeoutMs: number, log: Logger) {
  const native = createLogLimiter(log, { raw: kafka.debug !== "" });
  const tick = setInterval(() => native.tick(performance.now()), 10_000);
  tick.unref();
  const newLane = (): Lane =>
    createFfiProducer(
      {
        "bootstrap.servers": kafka.brokers.join(","),
        "client.id": kafka.clientId,
        "linger.ms": Math.min(config.lingerMs, LIBRDKAFKA_LINGER_MS),
        "batch.num.messages": config.batchMaxMessages,
        "compression.type": config.compression,
        acks: "all",
        "enable.idempotence": true,
        // librdkafka settles every message (delivered or failed) before the request's deadline.
        "message.timeout.ms": messageTimeoutMs,
        "queue.buffering.max.messages": Math.max(config.maxInFlight, 1000),
        "queue.buffering.max.kbytes": 32768,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 1000,
        log_level: kafka.debug ? 7 : 3,
        ...(kafka.debug ? { debug: kafka.debug } : {}),
        ...librdkafkaSecurity(kafka.security),
      },
      kafka.topic,
      {
        log: (level, facility, text) => native.log(levelOf(level), { facility }, text, performance.now()),
        error: (code, message, fatal) => native.log(fatal ? "error" : "warn", { code, fatal }, message, performance.now()),
      },
    );
  return { newLane, close: () => clearInterval(tick) };
}
