import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Kafka, logLevel } from "kafkajs";
import { loadConfig } from "../../src/config.ts";
import { createFfiConsumer, type FfiConsumer, type Message, type RebalanceEvent } from "../../src/kafka/ffi-consumer.ts";
import { recreateTopic } from "./harness/kafka.ts";
import { freePort, testEnv, uniqueName } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

// The worker's librdkafka consumer through bun:ffi (src/kafka/ffi-consumer.ts), call by call on the real broker:
// what it reads (payload, key, headers, offsets), pause and resume, seek, commit, the rebalances of a group of two,
// and a broker that is not there (errors reported, nothing thrown, disconnect bounded).

describe("librdkafka consumer through bun:ffi", () => {
  const config = loadConfig({ ...testEnv(), KAFKA_TOPIC: uniqueName("ffi-consumer"), KAFKA_PARTITIONS: "2" });
  const topic = config.kafka.topic;
  const kafka = new Kafka({ clientId: "ffi-consumer-test", brokers: [...config.kafka.brokers], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  const open: FfiConsumer[] = [];

  const consumer = (group: string, events?: RebalanceEvent[], errors: string[] = []) => {
    const c = createFfiConsumer(
      {
        "bootstrap.servers": config.kafka.brokers.join(","),
        "client.id": uniqueName("c"),
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": false,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
      },
      { log: () => {}, error: (_code, message) => errors.push(message) },
      { headers: true },
    );
    if (events) c.onEvents((_err, e) => events.push(e));
    open.push(c);
    return c;
  };
  /** Reads until `n` messages came (or fails after the usual wait). */
  const read = async (c: FfiConsumer, n: number) => {
    const out: Message[] = [];
    await waitFor(`${n} messages`, async () => {
      out.push(...(await c.recvBatch(100, 100)));
      return out.length >= n || undefined;
    });
    return out;
  };

  beforeAll(async () => {
    await recreateTopic(config);
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      messages: [0, 1, 2, 3].map((i) => ({ partition: i % 2, key: `k${i}`, value: `v${i}`, headers: { n: String(i) } })),
    });
  });
  afterAll(async () => {
    for (const c of open) await bounded("consumer.disconnect", c.disconnect(5000));
    await producer.disconnect();
  });

  test("reads payload, key, headers and offsets of every message, once assigned by its group", async () => {
    const events: RebalanceEvent[] = [];
    const c = consumer(uniqueName("g"), events);
    await c.subscribe(topic);
    const got = await read(c, 4);
    const seen = got.map((m) => `${m.partition}:${m.offset} ${m.key} ${m.payload} n=${m.headers?.n}`).sort();
    expect(seen).toEqual(["0:0 k0 v0 n=0", "0:1 k2 v2 n=2", "1:0 k1 v1 n=1", "1:1 k3 v3 n=3"]);
    expect(events.map((e) => `${e.name} ${e.payload.action}`)).toEqual(["PreRebalance assign", "PostRebalance assign"]);
    expect(c.assignment()).toEqual([
      { topic, partitionOffset: [expect.objectContaining({ partition: 0 }), expect.objectContaining({ partition: 1 })] },
    ]);
  });

  test("pause holds new messages back until resume; seek goes back; commit is what the group stores", async () => {
    const group = uniqueName("g");
    const c = consumer(group);
    await c.subscribe(topic);
    await read(c, 4);
    c.pause();
    await producer.send({ topic, acks: -1, messages: [{ partition: 0, value: "while paused" }] });
    // The broker has it; a paused consumer does not hand it over (a second of polls to be sure).
    const whilePaused: Message[] = [];
    for (const end = performance.now() + 1000; performance.now() < end; ) whilePaused.push(...(await c.recvBatch(100, 100)));
    expect(whilePaused).toEqual([]);
    c.resume();
    expect((await read(c, 1)).map((m) => String(m.payload))).toEqual(["while paused"]);
    c.seek(topic, 0, 1);
    const again = await read(c, 2);
    expect(again.map((m) => `${m.offset} ${m.payload}`)).toEqual(["1 v2", "2 while paused"]);
    await c.commit(topic, 0, 3);
    const admin = kafka.admin();
    await admin.connect();
    try {
      await waitFor("the commit stored", async () => {
        const [stored] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
        return stored!.partitions.find((p) => p.partition === 0)?.offset === "3" || undefined;
      });
    } finally {
      await admin.disconnect();
    }
  });

  test("a second member takes half the partitions; when it leaves, the first gets them back", async () => {
    const group = uniqueName("g");
    const first: RebalanceEvent[] = [];
    const a = consumer(group, first);
    await a.subscribe(topic);
    const mine = (c: FfiConsumer) => c.assignment().flatMap((t) => t.partitionOffset.map((p) => p.partition));
    await waitFor("a holds both", async () => (await a.recvBatch(100, 50), mine(a).length === 2 || undefined));
    const b = consumer(group);
    await b.subscribe(topic);
    await waitFor(
      "one partition each",
      async () => {
        await Promise.all([a.recvBatch(100, 50), b.recvBatch(100, 50)]);
        return (mine(a).length === 1 && mine(b).length === 1) || undefined;
      },
      30_000,
    );
    expect([...mine(a), ...mine(b)].sort()).toEqual([0, 1]);
    expect(first.some((e) => e.payload.action === "revoke")).toBe(true);
    await b.disconnect(10_000);
    await waitFor("a holds both again", async () => (await a.recvBatch(100, 50), mine(a).length === 2 || undefined), 30_000);
  });

  test("a broker that is not there: errors reported, nothing thrown, disconnect bounded", async () => {
    const errors: string[] = [];
    const c = createFfiConsumer(
      { "bootstrap.servers": `127.0.0.1:${await freePort()}`, "group.id": uniqueName("g"), "reconnect.backoff.max.ms": 200 },
      { log: () => {}, error: (_code, message) => errors.push(message) },
    );
    await c.subscribe(topic);
    await waitFor("a connection error reported", async () => ((await c.recvBatch(10, 100)).length === 0 && errors.length > 0) || undefined);
    await bounded("disconnect from nowhere", c.disconnect(2000));
    expect(c.recvBatch(1, 1)).rejects.toThrow("consumer closed");
  });
});
