import { describe, expect, test } from "bun:test";
// kafkajs's per-connection request queue, as patched in patches/kafkajs@2.2.4.patch. The admin client
// (kafka/admin.ts) keeps one connection open for the life of the API and the worker.
import RequestQueue from "kafkajs/src/network/requestQueue/index.js";
import { until } from "../until.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function queue(maxInFlightRequests: number | null = null) {
  return new RequestQueue({
    maxInFlightRequests,
    requestTimeout: 30_000,
    enforceRequestTimeout: false,
    clientId: "test",
    broker: "127.0.0.1:9092",
    logger: quiet,
  });
}

/** A request as kafkajs's connection pushes it; `sent` counts the times it went to the socket. */
function request(correlationId: number, sent: number[]) {
  return {
    entry: { correlationId, apiKey: 3, apiName: "Metadata", apiVersion: 6, resolve() {}, reject() {} },
    expectResponse: true,
    requestTimeout: 30_000,
    sendRequest: () => sent.push(correlationId),
  };
}

describe("kafkajs request queue (patched)", () => {
  // Upstream re-armed a timer after every check, with a negative delay when nothing was throttled: a check
  // every millisecond for as long as the connection lived (kafkajs issues 1556 and 1704), ~870 wake-ups a
  // second of an idle API and worker, about a sixth of their CPU per view at 2 000 views/s.
  test("a queue with nothing pending and nothing throttled leaves no timer behind", () => {
    const q = queue();
    q.checkPendingRequests();
    expect(q.throttleCheckTimeoutId).toBeNull();
    q.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 });
    expect(q.throttleCheckTimeoutId).toBeNull();
  });

  test("a request queued behind a throttle is still sent once the throttle ends", async () => {
    const q = queue();
    const sent: number[] = [];
    q.maybeThrottle(30);
    q.push(request(7, sent));
    expect(sent).toEqual([]);
    await until("the throttled request to be sent", () => sent.length === 1);
    expect(sent).toEqual([7]);
    expect(q.throttleCheckTimeoutId).toBeNull();
  });

  test("a request queued behind a throttle that ends at once is still sent (kafkajs PR 1532's case)", async () => {
    const q = queue();
    const sent: number[] = [];
    q.throttledUntil = Date.now() + 1;
    q.push(request(8, sent));
    await until("the request to be sent", () => sent.length === 1);
    expect(sent).toEqual([8]);
  });

  test("a request queued behind the in-flight limit is sent when an answer frees a slot", () => {
    const q = queue(1);
    const sent: number[] = [];
    q.push(request(1, sent));
    q.push(request(2, sent));
    expect(sent).toEqual([1]);
    q.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 });
    expect(sent).toEqual([1, 2]);
  });
});
