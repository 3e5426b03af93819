import { Kafka, logLevel, type Producer } from "kafkajs";
import { withDeadline } from "../deadline.ts";
import type { KafkaConfig } from "../config.ts";
import { kafkajsSecurity } from "./security.ts";
import { ensureTopic } from "./admin.ts";

// The dead-letter topic, `<topic>.dlq`: a message of the views topic that cannot be counted exactly (malformed, or
// counts no sum can hold) is copied there whole, with why and where it came from in its headers, before the worker
// moves past it. So a poison message stops nothing, and nothing is dropped without a trace an operator can replay.
// kafkajs, like the topic admin: a rare path that needs no librdkafka producer in the worker.

export interface DeadLetter {
  partition: number;
  offset: number;
  /** Views gathered from several messages (worker/refused.ts): the last of them; `offset` is the first. */
  lastOffset?: number;
  payload: Uint8Array | null | undefined;
  reason: string;
}

export interface DeadLetters {
  readonly topic: string;
  /** Resolves once Kafka acknowledged (acks=all) the copy; rejects when it could not (kafkajs retried). */
  send(letter: DeadLetter): Promise<void>;
  close(): Promise<void>;
}

export function deadLetterTopic(topic: string): string {
  return `${topic}.dlq`;
}

export function createDeadLetters(config: KafkaConfig): DeadLetters {
  const topic = deadLetterTopic(config.topic);
  let producer: Producer | null = null;
  let ready: Promise<Producer> | null = null;
  // Created on the first dead letter: most workers never write one.
  const connect = async () => {
    await ensureTopic(config, topic, 1);
    const p = new Kafka({
      clientId: `${config.clientId}-dlq`,
      brokers: [...config.brokers],
      logLevel: logLevel.NOTHING,
      retry: { retries: 5, initialRetryTime: 200 },
      ...kafkajsSecurity(config.security),
    }).producer({ allowAutoTopicCreation: false });
    await p.connect();
    producer = p;
    return p;
  };
  return {
    topic,
    async send(letter) {
      ready ??= connect().catch((err) => {
        ready = null;
        throw err;
      });
      const p = await ready;
      await p.send({
        topic,
        acks: -1,
        messages: [
          {
            value: letter.payload ? Buffer.from(letter.payload.buffer, letter.payload.byteOffset, letter.payload.byteLength) : null,
            headers: {
              reason: letter.reason,
              "source-topic": config.topic,
              "source-partition": String(letter.partition),
              "source-offset": String(letter.offset),
              ...(letter.lastOffset === undefined ? {} : { "source-offset-last": String(letter.lastOffset) }),
            },
          },
        ],
      });
    },
    async close() {
      await withDeadline(producer?.disconnect() ?? Promise.resolve(), 5000);
    },
  };
}
