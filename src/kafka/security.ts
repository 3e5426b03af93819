import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import type { SASLOptions } from "kafkajs";
import type { KafkaSecurity } from "../config-security.ts";

// One KafkaSecurity (config-security.ts), in the words of each client that talks to Kafka: librdkafka properties for
// the producer and the consumer, kafkajs options for the admin and the dead-letter producer, and TLS options for
// the topic-id request (topic-id.ts), which speaks Kafka's protocol itself.

/** librdkafka properties (its CONFIGURATION.md); none for plaintext. */
export function librdkafkaSecurity(s: KafkaSecurity): Record<string, string> {
  if (s.protocol === "plaintext") return {};
  return {
    "security.protocol": s.protocol,
    ...(s.caFile ? { "ssl.ca.location": s.caFile } : {}),
    ...(s.certificateFile ? { "ssl.certificate.location": s.certificateFile } : {}),
    ...(s.keyFile ? { "ssl.key.location": s.keyFile } : {}),
    ...(s.keyPassword ? { "ssl.key.password": s.keyPassword } : {}),
    ...(s.sasl ? { "sasl.mechanisms": s.sasl.mechanism, "sasl.username": s.sasl.username, "sasl.password": s.sasl.password } : {}),
  };
}

/** node:tls options: the files' contents, verification on (the default). Undefined: no TLS. */
export function tlsOptions(s: KafkaSecurity): ConnectionOptions | undefined {
  if (s.protocol !== "ssl" && s.protocol !== "sasl_ssl") return undefined;
  return {
    ...(s.caFile ? { ca: readFileSync(s.caFile, "utf8") } : {}),
    ...(s.certificateFile ? { cert: readFileSync(s.certificateFile, "utf8") } : {}),
    ...(s.keyFile ? { key: readFileSync(s.keyFile, "utf8") } : {}),
    ...(s.keyPassword ? { passphrase: s.keyPassword } : {}),
  };
}

/** kafkajs' `ssl` and `sasl` options. */
export function kafkajsSecurity(s: KafkaSecurity): { ssl?: ConnectionOptions; sasl?: SASLOptions } {
  const ssl = tlsOptions(s);
  const sasl = s.sasl
    ? ({ mechanism: s.sasl.mechanism.toLowerCase(), username: s.sasl.username, password: s.sasl.password } as SASLOptions)
    : undefined;
  return { ...(ssl ? { ssl } : {}), ...(sasl ? { sasl } : {}) };
}
