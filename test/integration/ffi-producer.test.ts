import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { loadConfig } from "../../src/config.ts";
import { createFfiProducer, type DeliveryReport, type FfiProducer, RdkafkaError } from "../../src/kafka/ffi-producer.ts";
import { readTopic, recreateTopic } from "./harness/kafka.ts";
import { testEnv, uniqueName } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

// The API's librdkafka producer through bun:ffi (src/kafka/ffi-producer.ts), on the real broker: each message
// reported once, on the partition it named; errors and log lines reach the caller; close() never hangs.

const PRODUCER = { acks: "all", "enable.idempotence": true, "linger.ms": 1, "message.timeout.ms": 3000, "compression.type": "lz4" };

async function settle(p: FfiProducer, timeoutMs = 20_000): Promise<DeliveryReport[]> {
  await waitFor("every message reported", async () => p.inFlightCount() === 0 || undefined, timeoutMs, 2);
  return p.flush().catch(() => p.getLastDeliveryResults());
}

describe("librdkafka producer through bun:ffi", () => {
  const env = testEnv();
  const config = loadConfig({ ...env, KAFKA_TOPIC: uniqueName("ffi"), KAFKA_PARTITIONS: "3" });
  const events = { errors: [] as string[], logs: [] as string[] };
  let producer: FfiProducer;

  beforeAll(async () => {
    await recreateTopic(config);
    producer = createFfiProducer({ ...PRODUCER, "bootstrap.servers": config.kafka.brokers.join(",") }, config.kafka.topic, {
      log: (_level, facility, text) => events.logs.push(`${facility} ${text}`),
      error: (_code, message) => events.errors.push(message),
    });
  });
  afterAll(() => producer.close());

  test("every message is reported once, on the partition it named, and is in Kafka there", async () => {
    const messages = [0, 1, 2, 0, 2].map((partition, i) => ({
      key: Buffer.from(`k${i}`),
      payload: Buffer.from(`payload ${i}`),
      partition,
    }));
    await producer.send({ topic: config.kafka.topic, messages });
    const reports = await settle(producer);
    expect(reports.map((r) => r.partition).sort()).toEqual([0, 0, 1, 2, 2]);
    expect(reports.every((r) => r.error === undefined)).toBe(true);
    const read = await readTopic(config, 5);
    expect(read.map((m) => `${m.partition} ${m.payload?.toString()}`).sort()).toEqual(
      messages.map((m, i) => `${m.partition} payload ${i}`).sort(),
    );
    // The next batch's flush hands back only its own reports.
    await producer.send({ topic: config.kafka.topic, messages: [{ key: Buffer.from("k"), payload: Buffer.from("x"), partition: 1 }] });
    expect((await settle(producer)).map((r) => r.partition)).toEqual([1]);
  });

  test("a partition the topic does not have is reported as an error of that message, not of the others", async () => {
    await producer.send({
      topic: config.kafka.topic,
      messages: [
        { key: Buffer.from("a"), payload: Buffer.from("fits"), partition: 2 },
        { key: Buffer.from("b"), payload: Buffer.from("no such partition"), partition: 7 },
      ],
    });
    await waitFor("both reported", async () => producer.inFlightCount() === 0 || undefined, 20_000, 2);
    await expect(producer.flush()).rejects.toBeInstanceOf(RdkafkaError);
    const reports = producer.getLastDeliveryResults();
    expect(reports.find((r) => r.partition === 2)?.error).toBeUndefined();
    // RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION: refused before it left the client.
    expect(reports.find((r) => r.partition === 7)?.error?.code).toBe(-190);
  });

  test("a property librdkafka does not know, or a topic name it refuses (over 512 characters), fails at creation, not at the first produce", () => {
    const quiet = { log: () => {}, error: () => {} };
    expect(() => createFfiProducer({ "bootstrap.servers": "127.0.0.1:1", "no.such.property": 1 }, "t", quiet)).toThrow(
      /no\.such\.property/,
    );
    expect(() => createFfiProducer({ "bootstrap.servers": "127.0.0.1:1" }, "x".repeat(600), quiet)).toThrow(/librdkafka topic/);
  });

  test("with no broker to talk to, errors and log lines reach the caller, messages fail in time, and close() returns", async () => {
    const seen = { errors: [] as string[], logs: [] as string[] };
    const dead = createFfiProducer(
      { ...PRODUCER, "bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 1500, "reconnect.backoff.ms": 100 },
      config.kafka.topic,
      { log: (_l, facility, text) => seen.logs.push(`${facility} ${text}`), error: (_c, message) => seen.errors.push(message) },
    );
    try {
      await dead.send({ topic: config.kafka.topic, messages: [{ key: Buffer.from("k"), payload: Buffer.from("lost"), partition: 0 }] });
      const reports = await settle(dead);
      expect(reports).toHaveLength(1);
      expect(reports[0]!.error?.code).toBe(-192); // RD_KAFKA_RESP_ERR__MSG_TIMED_OUT
      await waitFor("an error event", async () => seen.errors.length > 0 || undefined, 20_000, 50);
      await waitFor("a log line", async () => seen.logs.length > 0 || undefined, 20_000, 50);
    } finally {
      await bounded(
        "close() of a producer with no broker",
        Promise.resolve().then(() => dead.close()),
        10_000,
      );
    }
    await expect(dead.send({ topic: config.kafka.topic, messages: [] })).rejects.toBeInstanceOf(RdkafkaError);
  });
});
