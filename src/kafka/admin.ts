import { Kafka, logLevel } from "kafkajs";
import { connect as tcpConnect } from "node:net";
import type { KafkaConfig } from "../config.ts";

/**
 * Creates the views topic when it is missing; an existing topic is left as it is (its partition count is
 * reported, never changed: adding partitions would move products between partitions).
 * kafkajs does this one admin job; the data path uses librdkafka.
 */
export async function ensureTopic(config: KafkaConfig, topic = config.topic, partitions = config.partitions) {
  const kafka = new Kafka({
    clientId: `${config.clientId}-admin`,
    brokers: [...config.brokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 300 },
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const created = await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: partitions, replicationFactor: -1 }],
    });
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    return { created, partitions: meta.topics[0]?.partitions.length ?? 0 };
  } finally {
    await admin.disconnect();
  }
}

/** True when any broker accepts a TCP connection within the timeout: cheap enough for /ready. */
export function brokersReachable(brokers: readonly string[], timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    let pending = brokers.length;
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      if (ok || --pending === 0) {
        settled = true;
        resolve(ok);
      }
    };
    for (const b of brokers) {
      const i = b.lastIndexOf(":");
      const socket = tcpConnect({ host: b.slice(0, i), port: Number(b.slice(i + 1)) });
      socket.setTimeout(timeoutMs);
      socket.once("connect", () => (socket.destroy(), done(true)));
      socket.once("timeout", () => (socket.destroy(), done(false)));
      socket.once("error", () => (socket.destroy(), done(false)));
    }
  });
}
