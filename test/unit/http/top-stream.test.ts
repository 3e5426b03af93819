import { describe, expect, test } from "bun:test";
import { AppError } from "../../../src/errors.ts";
import { createTopStream } from "../../../src/http/top-stream.ts";
import { until } from "../until.ts";

// The live stream without a server: a top source whose list the test changes, and the response body read as
// the browser's EventSource would read it.
function source(initial: string) {
  let json = initial;
  let stale = false;
  const listeners = new Set<() => void>();
  return {
    topJson: (limit: number) => {
      if (stale) throw new AppError("database_unavailable", "too old");
      return JSON.stringify(JSON.parse(json).slice(0, limit));
    },
    onChange: (l: () => void) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    set(next: string) {
      json = next;
      for (const l of listeners) l();
    },
    setStale(v: boolean) {
      stale = v;
    },
    listeners,
  };
}

function reader(res: Response) {
  const r = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let done = false;
  void (async () => {
    for (;;) {
      const chunk = await r.read();
      if (chunk.done) break;
      text += decoder.decode(chunk.value);
    }
    done = true;
  })();
  const events = () =>
    text
      .split("\n\n")
      .filter((b) => b.startsWith("event: top"))
      .map((b) => JSON.parse(b.split("data: ")[1]!));
  return { events, text: () => text, done: () => done };
}

describe("GET /top/stream", () => {
  test("sends the list at once, then only when this stream's part of it changes", async () => {
    const src = source('[{"id":"a","view_count":3},{"id":"b","view_count":2}]');
    const stream = createTopStream(src, { heartbeatMs: 60_000, maxClients: 10 });
    const ac = new AbortController();
    const res = stream.open(1, ac.signal);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const r = reader(res);
    await until("the first event", () => r.events().length === 1);
    expect(r.events()[0]).toEqual([{ id: "a", view_count: 3 }]);
    src.set('[{"id":"a","view_count":3},{"id":"b","view_count":3}]'); // below limit 1: nothing to send
    src.set('[{"id":"a","view_count":4},{"id":"b","view_count":3}]');
    await until("the second event", () => r.events().length === 2);
    expect(r.events()[1]).toEqual([{ id: "a", view_count: 4 }]);
    // Too old to serve: nothing is sent until a refresh succeeds again.
    src.setStale(true);
    src.set('[{"id":"b","view_count":9}]');
    src.setStale(false);
    src.set('[{"id":"b","view_count":10}]');
    await until("the event after the outage", () => r.events().length === 3);
    expect(r.events()[2]).toEqual([{ id: "b", view_count: 10 }]);
    ac.abort();
    await until("the stream closed", () => r.done());
    expect(stream.clients()).toBe(0);
    expect(src.listeners.size).toBe(0);
  });

  test("a quiet stream gets a comment line every heartbeat, under the idle timeout", async () => {
    const stream = createTopStream(source("[]"), { heartbeatMs: 20, maxClients: 10 });
    const ac = new AbortController();
    const r = reader(stream.open(10, ac.signal));
    await until("two heartbeats", () => r.text().split(": keep-alive").length > 2);
    ac.abort();
  });

  test("past maxClients a stream is refused with a retryable 503 code; closeAll ends every stream", async () => {
    const stream = createTopStream(source("[]"), { heartbeatMs: 60_000, maxClients: 2 });
    const a = reader(stream.open(10, new AbortController().signal));
    const b = reader(stream.open(10, new AbortController().signal));
    let refused: unknown;
    try {
      stream.open(10, new AbortController().signal);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).code).toBe("too_many_streams");
    expect((refused as AppError).retryable).toBe(true);
    stream.closeAll();
    await until("both streams ended", () => a.done() && b.done());
    expect(stream.clients()).toBe(0);
  });

  test("a client that does not read holds one list, the latest, however many changes come", async () => {
    const src = source('[{"id":"a","view_count":0}]');
    const stream = createTopStream(src, { heartbeatMs: 60_000, maxClients: 10 });
    const ac = new AbortController();
    const res = stream.open(1, ac.signal);
    // Nobody reads for 600 changes.
    for (let i = 1; i <= 600; i++) src.set(`[{"id":"a","view_count":${i}}]`);
    await Bun.sleep(50);
    const r = res.body!.getReader();
    const chunks: string[] = [];
    const decoder = new TextDecoder();
    // What was held: read until the stream has nothing more queued (a read that does not settle at once).
    for (;;) {
      const next = await Promise.race([r.read(), Bun.sleep(20).then(() => null)]);
      if (next === null || next.done) break;
      chunks.push(decoder.decode(next.value));
    }
    const events = chunks
      .join("")
      .split("\n\n")
      .filter((b) => b.startsWith("event: top"));
    expect(events.length).toBeLessThanOrEqual(2);
    expect(events.at(-1)).toContain('"view_count":600');
    ac.abort();
  });

  test("one address may hold at most maxPerAddress streams; others still get theirs", () => {
    const stream = createTopStream(source("[]"), { heartbeatMs: 60_000, maxClients: 10, maxPerAddress: 2 });
    stream.open(10, new AbortController().signal, "203.0.113.5");
    stream.open(10, new AbortController().signal, "203.0.113.5");
    expect(() => stream.open(10, new AbortController().signal, "203.0.113.5")).toThrow(AppError);
    stream.open(10, new AbortController().signal, "203.0.113.6");
    expect(stream.clients()).toBe(3);
    stream.closeAll();
    stream.open(10, new AbortController().signal, "203.0.113.5");
    stream.closeAll();
  });
});
