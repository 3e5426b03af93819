import { describe, expect, test } from "bun:test";
import { Writable } from "node:stream";
import pino from "pino";
import { createNativeLogRouter } from "../../../src/kafka/native-log.ts";

// librdkafka's lines as kafka-crab-js prints them (its tracing subscriber's JSON), checked against what pino
// records and what passes through untouched.
const native = (level: string, message: string) =>
  JSON.stringify({
    timestamp: "2026-11-26T01:48:50.901301Z",
    level,
    fields: { message, "log.target": "librdkafka" },
    target: "librdkafka",
  });

function setup(opts: { perWindow?: number; windowMs?: number; raw?: boolean } = {}) {
  const records: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      records.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const log = pino({ level: "trace", formatters: { level: (label) => ({ level: label }) } }, sink).child({ component: "librdkafka" });
  const passed: string[] = [];
  const router = createNativeLogRouter(log, (line) => passed.push(line), opts);
  return { router, records, passed, settle: () => new Promise((r) => setImmediate(r)) };
}

describe("librdkafka's native log lines", () => {
  test("become pino records of the librdkafka component, with their level and message", async () => {
    const { router, records, passed, settle } = setup();
    router.push(`${native("ERROR", "librdkafka: FAIL [thrd:main]: Connect failed")}\n${native("WARN", "librdkafka: slow")}\n`, 0);
    await settle();
    expect(passed).toEqual([]);
    expect(records.map((r) => [r.level, r.component, r.msg])).toEqual([
      ["error", "librdkafka", "librdkafka: FAIL [thrd:main]: Connect failed"],
      ["warn", "librdkafka", "librdkafka: slow"],
    ]);
  });

  test("a line split across reads is routed once, whole", async () => {
    const { router, records, settle } = setup();
    const line = native("ERROR", "librdkafka: split");
    router.push(line.slice(0, 20), 0);
    router.push(`${line.slice(20)}\n`, 0);
    await settle();
    expect(records.map((r) => r.msg)).toEqual(["librdkafka: split"]);
  });

  test("at most perWindow lines per window are logged; the rest are counted in one line when the window closes", async () => {
    const { router, records, settle } = setup({ perWindow: 2, windowMs: 1000 });
    for (let i = 0; i < 7; i++) router.push(`${native("ERROR", `line ${i}`)}\n`, 100 + i);
    router.tick(500); // the window is still open: nothing to say yet
    router.tick(1200);
    await settle();
    expect(records.map((r) => r.msg)).toEqual(["line 0", "line 1", "more librdkafka lines in the last window were not logged"]);
    expect(records[2]!.suppressed).toBe(5);
  });

  test("anything else written to fd 1 passes through unchanged, and so does everything in raw (KAFKA_DEBUG) mode", async () => {
    const plain = setup();
    plain.router.push('hello from console.log\n{"level":"info","msg":"ours"}\n{"timestamp": not json\n', 0);
    expect(plain.passed).toEqual(["hello from console.log\n", '{"level":"info","msg":"ours"}\n', '{"timestamp": not json\n']);
    const raw = setup({ raw: true });
    raw.router.push(`${native("DEBUG", "librdkafka: CGRPSTATE")}\n`, 0);
    await raw.settle();
    expect(raw.passed).toEqual([`${native("DEBUG", "librdkafka: CGRPSTATE")}\n`]);
    expect(raw.records).toEqual([]);
  });
});
