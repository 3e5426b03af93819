import { Kafka, logLevel } from "kafkajs";
import { backoff } from "../backoff.ts";
import { orTimeout, withDeadline } from "../deadline.ts";
import { connect as tcpConnect } from "node:net";
import type { KafkaConfig } from "../config.ts";
import { kafkajsSecurity } from "./security.ts";

/**
 * Creates the views topic when it is missing; an existing topic is left as it is (its partition count is
 * reported, never changed: adding partitions would move products between partitions).
 * kafkajs does this one admin job; the data path uses librdkafka.
 *
 * Returns once every partition has a leader. A broker that just started (or a cluster whose data was wiped)
 * accepts connections before its metadata is served: a new topic can be missing from metadata for a moment
 * (UNKNOWN_TOPIC_OR_PARTITION). So each attempt uses a fresh client (kafkajs keeps stale cluster metadata)
 * and the attempts go on until `timeoutMs`, the last error then named.
 */
export async function ensureTopic(config: KafkaConfig, topic = config.topic, partitions = config.partitions, timeoutMs = 30_000) {
  const deadline = performance.now() + timeoutMs;
  let created = false;
  for (let attempt = 0; ; attempt++) {
    const admin = adminClient(config, 5000, 0);
    try {
      await admin.connect();
      created = (await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: -1 }] })) || created;
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      const parts = meta.topics[0]?.partitions ?? [];
      if (parts.length > 0 && parts.every((p) => p.leader >= 0)) return { created, partitions: parts.length };
      throw new Error(`topic ${topic} has partitions without a leader`);
    } catch (err) {
      if (performance.now() + 500 > deadline) throw new Error(`topic ${topic} not ready after ${timeoutMs} ms`, { cause: err });
      await Bun.sleep(backoff(attempt, { baseMs: 200, maxMs: 2000 }));
    } finally {
      await withDeadline(admin.disconnect(), 2000);
    }
  }
}

/** A kafkajs admin client: quiet, each request bounded by `timeoutMs`, `retries` retries 200 ms apart at first. */
function adminClient(config: KafkaConfig, timeoutMs: number, retries: number) {
  return new Kafka({
    clientId: `${config.clientId}-admin`,
    brokers: [...config.brokers],
    logLevel: logLevel.NOTHING,
    requestTimeout: timeoutMs,
    retry: { retries, initialRetryTime: 200 },
    ...kafkajsSecurity(config.security),
  }).admin();
}

export interface Watermarks {
  /** First offset still in the log (retention moves it up). */
  low: number;
  /** Offset the next message will get (log end). */
  high: number;
}

export interface TopicAdmin {
  partitionCount(): Promise<number>;
  watermarks(): Promise<Map<number, Watermarks>>;
  /** The client ids of a consumer group's members, as its coordinator lists them. */
  groupMembers(groupId: string): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * One kafkajs admin connection, every call bounded by `timeoutMs`. After any failure the client is dropped and
 * the next call builds a new one: kafkajs keeps cluster metadata across reconnects, and after Kafka's data is
 * wiped (new cluster, new topic) that stale metadata makes every later call fail.
 */
export function createTopicAdmin(config: KafkaConfig, timeoutMs = 5000): TopicAdmin {
  const build = () => adminClient(config, timeoutMs, 1);
  let current: { admin: ReturnType<typeof build>; connected: Promise<void> } | null = null;
  const bounded = async <T>(work: (admin: ReturnType<typeof build>) => Promise<T>): Promise<T> => {
    if (!current) {
      const admin = build();
      current = { admin, connected: admin.connect() };
    }
    const mine = current;
    try {
      return await orTimeout(
        mine.connected.then(() => work(mine.admin)),
        timeoutMs,
        () => new Error(`kafka admin call timed out after ${timeoutMs} ms`),
      );
    } catch (err) {
      if (current === mine) current = null;
      void mine.admin.disconnect().catch(() => {});
      throw err;
    }
  };
  return {
    partitionCount: () =>
      bounded(async (admin) => (await admin.fetchTopicMetadata({ topics: [config.topic] })).topics[0]?.partitions.length ?? 0),
    watermarks: () =>
      bounded(async (admin) => {
        const offsets = await admin.fetchTopicOffsets(config.topic);
        return new Map(offsets.map((o) => [o.partition, { low: Number(o.low), high: Number(o.high) }]));
      }),
    groupMembers: (groupId) =>
      bounded(async (admin) => (await admin.describeGroups([groupId])).groups[0]?.members.map((m) => m.clientId) ?? []),
    async close() {
      const c = current;
      current = null;
      if (c) await withDeadline(c.admin.disconnect(), timeoutMs);
    },
  };
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
      const end = (ok: boolean) => {
        socket.destroy();
        done(ok);
      };
      socket.once("connect", () => end(true));
      socket.once("timeout", () => end(false));
      socket.once("error", () => end(false));
    }
  });
}
