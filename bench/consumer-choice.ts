// Which consumer client for the worker: kafka-crab-js (librdkafka) or kafkajs, measured side by side under Bun
// on the same topic: N view messages produced once, then read from the beginning by each client in a group
// of its own, decoding every payload as the worker does. Prints messages/s and peak RSS per client.
//   bun bench/consumer-choice.ts        (KAFKA_BROKERS of the stack; N=200000 by default)
import { Kafka, logLevel } from "kafkajs";
import { KafkaClient } from "kafka-crab-js";
import { decodeViewMessage } from "../src/domain/view.ts";
import { ensureTopic } from "../src/kafka/admin.ts";
import { loadConfig } from "../src/config.ts";
import { createProducer } from "../src/ingest/producer.ts";
import { createLogger } from "../src/log.ts";
import { Registry } from "../src/metrics.ts";

const N = Number(process.env.N ?? 200_000);
const topic = process.env.CHOICE_TOPIC ?? `consumer-choice-${Date.now().toString(36)}`;
const config = loadConfig({ ...process.env, KAFKA_TOPIC: topic, LOG_LEVEL: "error" });

if (!process.env.CHOICE_TOPIC) {
  // The parent produces the messages once; each client then reads them in a process of its own.
  await ensureTopic(config.kafka);
  const producer = createProducer(config.kafka, config.producer, createLogger("error", "bench"), new Registry());
  const ids = Array.from({ length: 10_000 }, () => crypto.randomUUID());
  for (let i = 0; i < N; i += 5000) {
    await Promise.all(
      Array.from({ length: Math.min(5000, N - i) }, (_, j) => producer.publish([{ product_id: ids[(i + j) % ids.length]!, count: 1 }])),
    );
  }
  await producer.close();
}

const rss = () => Math.round(process.memoryUsage().rss / 1024 / 1024);

async function crab() {
  const client = new KafkaClient({ brokers: config.kafka.brokers.join(","), clientId: "choice-crab", logLevel: "error" });
  const consumer = client.createConsumer({
    groupId: `crab-${topic}`,
    enableAutoCommit: false,
    configuration: { "auto.offset.reset": "earliest" },
  });
  await consumer.subscribe(topic);
  let n = 0;
  let t0 = 0;
  let peak = rss();
  while (n < N) {
    const batch = await consumer.recvBatch(5000, 100);
    if (batch.length && !t0) t0 = performance.now();
    for (const m of batch) if (decodeViewMessage(m.payload)) n++;
    peak = Math.max(peak, rss());
  }
  const secs = (performance.now() - t0) / 1000;
  await consumer.disconnect();
  return { client: "kafka-crab-js recvBatch(5000)", messagesPerSecond: Math.round(N / secs), peakRssMB: peak };
}

async function kafkajs() {
  const kafka = new Kafka({ clientId: "choice-kafkajs", brokers: [...config.kafka.brokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `kafkajs-${topic}`, maxBytes: 16 * 1024 * 1024 });
  consumer.on(consumer.events.CRASH, (e) => {
    console.log(JSON.stringify({ client: "kafkajs eachBatch", error: (e.payload.error as Error).message }));
    process.exit(0);
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let n = 0;
  let t0 = 0;
  let peak = rss();
  const done = Promise.withResolvers<void>();
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 6,
    eachBatch: async ({ batch }) => {
      if (!t0) t0 = performance.now();
      for (const m of batch.messages) if (decodeViewMessage(m.value)?.views) n++;
      peak = Math.max(peak, rss());
      if (n >= N) done.resolve();
    },
  });
  await done.promise;
  const secs = (performance.now() - t0) / 1000;
  await consumer.disconnect();
  return { client: "kafkajs eachBatch", messagesPerSecond: Math.round(N / secs), peakRssMB: peak };
}

// RSS is per process, so each client runs in a fresh process: `bun bench/consumer-choice.ts crab|kafkajs`.
const which = process.argv[2];
if (which === "crab") console.log(JSON.stringify(await crab()));
else if (which === "kafkajs") console.log(JSON.stringify(await kafkajs()));
else {
  for (const c of ["crab", "kafkajs"]) {
    const p = Bun.spawnSync(["bun", import.meta.path, c], { env: { ...process.env, CHOICE_TOPIC: topic }, stderr: "inherit" });
    console.log(p.stdout.toString().trim().split("\n").pop());
  }
}
process.exit(0);
