import { describe, expect, test } from "bun:test";
import { loadConfig } from "../../../src/config.ts";
import { AppError } from "../../../src/errors.ts";
import { createLogger } from "../../../src/log.ts";
import { Registry } from "../../../src/metrics.ts";
import { createProducer } from "../../../src/ingest/producer.ts";
import { LANE_FAILURES_BEFORE_RENEW } from "../../../src/ingest/lanes.ts";
import type { Lane } from "../../../src/ingest/lane-cycle.ts";
import type { Report } from "../../../src/ingest/lane-batch.ts";
import { decodeViewMessage, type ViewMessage } from "../../../src/domain/view.ts";

// The producer's lane scheduling without Kafka: each lane's librdkafka producer is replaced by a fake whose
// behaviour the test picks per producer (the n-th producer created). What is tested is that no producer,
// however broken, can keep the API refusing views once a working producer could take them.
const config = loadConfig({ KAFKA_PRODUCER_LANES: "1", INGEST_TIMEOUT_MS: "3000", KAFKA_PARTITIONS: "1" });
const id = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

type Behaviour = "ok" | "fatal" | "wedged" | "timeouts";

/** Producers created in order; the n-th behaves as `plan[n]` (the last entry repeats). */
function fakeLanes(plan: Behaviour[]) {
  const made: Behaviour[] = [];
  /** Which producers (by creation order) were closed, in order. */
  const closed: number[] = [];
  const newLane = (): Lane => {
    const kind = plan[Math.min(made.length, plan.length - 1)]!;
    const n = made.length;
    made.push(kind);
    let pending: Report[] = [];
    let last: Report[] = [];
    return {
      async send(record) {
        // librdkafka's fatal state: every produce call is refused before anything is enqueued.
        if (kind === "fatal") throw new Error("Message production error: Fatal (Local: Fatal error)");
        // A native call that never comes back.
        if (kind === "wedged") return new Promise(() => {});
        for (let i = 0; i < record.messages.length; i++) {
          pending.push(kind === "ok" ? { partition: 0 } : { partition: 0, error: { code: -192, message: "Local: Message timed out" } });
        }
        return [];
      },
      async flush() {
        last = pending;
        pending = [];
        if (last.some((r) => r.error)) throw new Error("Flush failed");
        return last;
      },
      inFlightCount: () => 0,
      getLastDeliveryResults: () => last,
      close: () => void closed.push(n),
    };
  };
  return { newLane, made, closed };
}

async function outcome(p: Promise<void>): Promise<"accepted" | string> {
  try {
    await p;
    return "accepted";
  } catch (err) {
    if (err instanceof AppError) return `${err.code} ${(err.details as { written: string }).written}`;
    throw err;
  }
}

/** Publishes one view at a time, as a client retrying its 503s would, until one is accepted. */
async function publishUntilAccepted(producer: ReturnType<typeof createProducer>, attempts: number) {
  const answers: string[] = [];
  for (let i = 0; i < attempts; i++) {
    const a = await outcome(producer.publish([{ product_id: id(i + 1), count: 1 }]));
    answers.push(a);
    if (a === "accepted") break;
    // The producer refuses for 1 s after a failed batch while anything is in flight; nothing is here.
    await Bun.sleep(1);
  }
  return answers;
}

function make(plan: Behaviour[]) {
  const lanes = fakeLanes(plan);
  const metrics = new Registry();
  const producer = createProducer(config.kafka, config.producer, createLogger("silent", "test"), metrics, { newLane: lanes.newLane });
  return { producer, made: lanes.made, closed: lanes.closed, metrics };
}

describe("producer lanes", () => {
  test("a producer that refuses every message (librdkafka fatal state) is replaced, and views are accepted again", async () => {
    const { producer, made } = make(["fatal", "ok"]);
    const answers = await publishUntilAccepted(producer, 10);
    // Refused before Kafka: not written. Then the lane's new producer takes the retry.
    expect(answers[0]).toBe("ingest_unavailable no");
    expect(answers.at(-1)).toBe("accepted");
    expect(made).toEqual(["fatal", "ok"]);
    await producer.close(1000);
  });

  test("a replaced producer is closed once its lane has a new one, and the idle ones when the producer closes", async () => {
    const { producer, made, closed } = make(["fatal", "ok"]);
    const answers = await publishUntilAccepted(producer, 10);
    expect(answers.at(-1)).toBe("accepted");
    expect(made).toEqual(["fatal", "ok"]);
    expect(closed).toEqual([0]);
    await producer.close(1000);
    expect(closed).toEqual([0, 1]);
  });

  test("a send() that never returns is answered 503 unknown within the request's deadline, and the lane renewed", async () => {
    const { producer, made } = make(["wedged", "ok"]);
    expect(await outcome(producer.publish([{ product_id: id(1), count: 1 }]))).toBe("ingest_unavailable unknown");
    const answers = await publishUntilAccepted(producer, 50);
    expect(answers.at(-1)).toBe("accepted");
    expect(made).toEqual(["wedged", "ok"]);
    await producer.close(1000);
  });

  test(`a producer whose batches fail ${LANE_FAILURES_BEFORE_RENEW} times in a row gets a new one; an outage's failures alone do not renew it sooner`, async () => {
    const { producer, made } = make(["timeouts", "ok"]);
    const answers = await publishUntilAccepted(producer, 20);
    expect(answers.slice(0, LANE_FAILURES_BEFORE_RENEW)).toEqual(Array(LANE_FAILURES_BEFORE_RENEW).fill("ingest_unavailable unknown"));
    expect(answers.at(-1)).toBe("accepted");
    expect(answers.length).toBe(LANE_FAILURES_BEFORE_RENEW + 1);
    expect(made).toEqual(["timeouts", "ok"]);
    await producer.close(1000);
  });

  test("a healthy producer is never renewed", async () => {
    const { producer, made } = make(["ok"]);
    for (let i = 0; i < 20; i++) expect(await outcome(producer.publish([{ product_id: id(i + 1), count: 1 }]))).toBe("accepted");
    expect(made).toEqual(["ok"]);
    await producer.close(1000);
  });
});

describe("the batching window (KAFKA_LINGER_MS)", () => {
  /** A lane that acknowledges everything and keeps what each send() carried, decoded. */
  function recordingLanes() {
    const sends: ViewMessage[][] = [];
    /** The partition of each message, per send(). */
    const partitions: number[][] = [];
    const newLane = (): Lane => {
      let pending: Report[] = [];
      return {
        async send(record) {
          sends.push(record.messages.map((m) => decodeViewMessage(m.payload)!));
          partitions.push(record.messages.map((m) => m.partition));
          for (const m of record.messages) pending.push({ partition: m.partition });
          return [];
        },
        async flush() {
          const done = pending;
          pending = [];
          return done;
        },
        inFlightCount: () => 0,
        getLastDeliveryResults: () => [],
      };
    };
    return { newLane, sends, partitions };
  }

  test("requests that arrive while the first waits for its window ride in the same message, even with a lane free", async () => {
    const c = loadConfig({ KAFKA_PRODUCER_LANES: "2", KAFKA_LINGER_MS: "50", KAFKA_PARTITIONS: "1" });
    const lanes = recordingLanes();
    const producer = createProducer(c.kafka, c.producer, createLogger("silent", "test"), new Registry(), { newLane: lanes.newLane });
    const hot = id(1);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => outcome(producer.publish([{ product_id: i < 5 ? hot : id(i + 1), count: 1 }]))),
    );
    expect(answers).toEqual(Array(10).fill("accepted"));
    // One window, one partition: one message, the hot product's five views merged into one item.
    expect(lanes.sends.length).toBe(1);
    expect(lanes.sends[0]!.length).toBe(1);
    const views = lanes.sends[0]![0]!.views;
    expect(views.find((v) => v.product_id === hot)?.count).toBe(5);
    expect(views.reduce((n, v) => n + v.count, 0)).toBe(10);
    await producer.close(1000);
  });

  test("with KAFKA_LINGER_MS=0 a request leaves as soon as a lane is free", async () => {
    const c = loadConfig({ KAFKA_PRODUCER_LANES: "1", KAFKA_LINGER_MS: "0", KAFKA_PARTITIONS: "1" });
    const lanes = recordingLanes();
    const producer = createProducer(c.kafka, c.producer, createLogger("silent", "test"), new Registry(), { newLane: lanes.newLane });
    const first = producer.publish([{ product_id: id(1), count: 1 }]);
    // Taken by the free lane before publish() returned: the second request finds it busy and waits for the next batch.
    expect(lanes.sends.length).toBe(1);
    const second = producer.publish([{ product_id: id(2), count: 1 }]);
    expect([await outcome(first), await outcome(second)]).toEqual(["accepted", "accepted"]);
    expect(lanes.sends.map((s) => s[0]!.views.length)).toEqual([1, 1]);
    await producer.close(1000);
  });

  test("successive windows take the partitions in turn, so every partition gets an even share whatever the products", async () => {
    const c = loadConfig({ KAFKA_PRODUCER_LANES: "2", KAFKA_LINGER_MS: "0", KAFKA_PARTITIONS: "3" });
    const lanes = recordingLanes();
    const producer = createProducer(c.kafka, c.producer, createLogger("silent", "test"), new Registry(), { newLane: lanes.newLane });
    // The same product every time: under a key-hash partitioner all seven would land on one partition.
    for (let i = 0; i < 7; i++) expect(await outcome(producer.publish([{ product_id: id(1), count: 1 }]))).toBe("accepted");
    expect(lanes.partitions).toEqual([[0], [1], [2], [0], [1], [2], [0]]);
    await producer.close(1000);
  });
});
