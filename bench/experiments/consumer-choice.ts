// Which consumer client for the worker: the project's librdkafka binding (kafka/ffi-consumer.ts) or kafkajs (kafka-crab-js
// until 2026-12-07: bench/RESULTS.md has the three side by side), measured side by side under Bun
// on the same topic: N one-view messages produced once (lz4), then read
// from the beginning by each client in a group of its own, decoding every payload as the worker does. Prints views/s,
// messages, CPU per message and peak RSS per client.
//   bun bench/experiments/consumer-choice.ts        (KAFKA_BROKERS of the stack; N=200000 by default)
import { Kafka, logLevel } from "kafkajs";
import { createConsumer } from "../../src/kafka/client.ts";
import { decodeViewMessage, encodeViewEvents } from "../../src/domain/view.ts";
import { ensureTopic } from "../../src/kafka/admin.ts";
import { loadConfig } from "../../src/config.ts";
import { createFfiProducer } from "../../src/kafka/ffi-producer.ts";
import { createLogger } from "../../src/log.ts";

const N = Number(process.env.N ?? 200_000);
const topic = process.env.CHOICE_TOPIC ?? `consumer-choice-${Date.now().toString(36)}`;
const config = loadConfig({ ...process.env, KAFKA_TOPIC: topic, LOG_LEVEL: "error" });

if (!process.env.CHOICE_TOPIC) {
  // The parent produces the messages once, one view each (lz4, as the API's producer sends); each client then reads
  // them in a process of its own.
  await ensureTopic(config.kafka);
  const producer = createFfiProducer(
    { "bootstrap.servers": config.kafka.brokers.join(","), "compression.type": "lz4", "linger.ms": 5, acks: "all" },
    topic,
    { log: () => {}, error: (code, message) => console.error(code, message) },
  );
  const ids = Array.from({ length: 10_000 }, () => crypto.randomUUID());
  for (let i = 0; i < N; i += 5000) {
    const messages = Array.from({ length: Math.min(5000, N - i) }, (_, j) => ({
      partition: (i + j) % config.kafka.partitions,
      payload: encodeViewEvents([{ product_id: ids[(i + j) % ids.length]!, count: 1 }]),
    }));
    await producer.send({ topic, messages });
    while (producer.inFlightCount() > 0) await Bun.sleep(5);
    await producer.flush();
  }
  producer.close();
}

/** Views in a message: the producer merges a window's requests into one message, so N views are fewer messages. */
const views = (payload: Buffer | null) => {
  const m = decodeViewMessage(payload);
  messages++;
  return m ? m.views.reduce((a, e) => a + e.count, 0) : 0;
};
let messages = 0;

const rss = () => Math.round(process.memoryUsage().rss / 1024 / 1024);

async function ffi() {
  const consumer = createConsumer(
    config.kafka,
    "choice-ffi",
    { "group.id": `ffi-${topic}`, "enable.auto.commit": false, "auto.offset.reset": "earliest" },
    createLogger("error", "bench"),
  );
  await consumer.subscribe(topic);
  let n = 0;
  let t0 = 0;
  let peak = rss();
  const cpu0 = process.cpuUsage();
  while (n < N) {
    const batch = await consumer.recvBatch(5000, 100);
    if (batch.length && !t0) t0 = performance.now();
    for (const m of batch) n += views(m.payload);
    peak = Math.max(peak, rss());
  }
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await consumer.disconnect();
  return {
    client: "ffi-consumer recvBatch(5000)",
    viewsPerSecond: Math.round(N / secs),
    messages,
    peakRssMB: peak,
    cpuUsPerMessage: Math.round((cpu.user + cpu.system) / messages),
  };
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
      for (const m of batch.messages) n += views(m.value);
      peak = Math.max(peak, rss());
      if (n >= N) done.resolve();
    },
  });
  await done.promise;
  const secs = (performance.now() - t0) / 1000;
  await consumer.disconnect();
  return { client: "kafkajs eachBatch", viewsPerSecond: Math.round(N / secs), messages, peakRssMB: peak };
}

// RSS is per process, so each client runs in a fresh process: `bun bench/experiments/consumer-choice.ts ffi|kafkajs`.
const which = process.argv[2];
if (which === "ffi") console.log(JSON.stringify(await ffi()));
else if (which === "kafkajs") console.log(JSON.stringify(await kafkajs()));
else {
  for (const c of ["ffi", "kafkajs"]) {
    const p = Bun.spawnSync(["bun", import.meta.path, c], { env: { ...process.env, CHOICE_TOPIC: topic }, stderr: "inherit" });
    console.log(p.stdout.toString().trim().split("\n").pop());
  }
}
process.exit(0);
