import { Kafka, logLevel } from "kafkajs";
import type { KafkaConfig } from "../config.ts";
import type { Db } from "../db/client.ts";
import type { Registry } from "../metrics.ts";
import type { Logger } from "../log.ts";
import { loadOffsets } from "./writer.ts";

// Consumer lag as it matters here: messages in the topic not yet counted in Postgres
// (log end offset minus the next_offset stored with the counts), per partition.
export function startLagMonitor(config: KafkaConfig, db: Db, metrics: Registry, log: Logger, everyMs = 5000) {
  const lag = metrics.gauge("worker_consumer_lag_messages", "Messages in Kafka not yet counted in Postgres, per partition");
  const admin = new Kafka({ clientId: `${config.clientId}-lag`, brokers: [...config.brokers], logLevel: logLevel.NOTHING }).admin();
  let connected = false;
  let stopped = false;

  async function sample() {
    if (!connected) {
      await admin.connect();
      connected = true;
    }
    const ends = await admin.fetchTopicOffsets(config.topic);
    const stored = await loadOffsets(db, config.topic, ends.map((e) => e.partition));
    for (const e of ends) {
      const next = Math.max(stored.get(e.partition) ?? 0, 0);
      lag.set(Math.max(Number(e.high) - next, 0), { partition: e.partition });
    }
  }

  const timer = setInterval(() => {
    sample().catch((err) => log.debug({ err }, "lag sample failed"));
  }, everyMs);
  return {
    sample,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      if (connected) await admin.disconnect().catch(() => {});
    },
  };
}
