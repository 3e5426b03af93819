import { describe, expect, test } from "bun:test";
import { seedProducts, viewCounts } from "./harness/db.ts";
import { INGEST_TOKEN } from "./harness/http.ts";
import { testEnv, useStack } from "./harness/stack.ts";
import { waitFor } from "./harness/wait.ts";

// A client that keeps a connection for the time the API says it may (Keep-Alive: timeout=N) must find it open:
// a POST sent on a connection the server is closing ends in EOF, and its sender cannot know whether it counted.
// Bun closes idle connections on a 4-second timer, so its idleTimeout alone closed some after less than N - 3 s.
// Six connections, opened 0.7 s apart, cover the timer's whole period: whatever its phase, one of them would meet it.

const IDLE_S = 4;
const CONNECTIONS = 6;

/** One raw HTTP/1.1 connection: writes a request, resolves with the response's head, or with "closed". */
function rawConnection(port: number) {
  let pending: ((head: string) => void) | null = null;
  let buffer = "";
  let closed = false;
  const socket = Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_, chunk) {
        buffer += chunk.toString();
        const end = buffer.indexOf("\r\n\r\n");
        const length = Number(/content-length: *(\d+)/i.exec(buffer)?.[1] ?? 0);
        if (end >= 0 && buffer.length >= end + 4 + length) {
          const head = buffer.slice(0, end);
          buffer = "";
          pending?.(head);
        }
      },
      close() {
        closed = true;
        pending?.("closed");
      },
    },
  });
  return {
    async send(request: string): Promise<string> {
      const s = await socket;
      if (closed) return "closed";
      const answer = new Promise<string>((resolve) => (pending = resolve));
      s.write(request);
      return Promise.race([answer, Bun.sleep(15_000).then(() => "no answer in 15 s")]);
    },
    async end() {
      (await socket).end();
    },
  };
}

describe("keep-alive connections", () => {
  const stack = useStack(testEnv({ HTTP_IDLE_TIMEOUT_S: String(IDLE_S) }));

  test("a connection kept idle as long as Keep-Alive: timeout=N says is still open, and its POST is counted", async () => {
    const { ctx, api } = stack;
    const [id] = await seedProducts(ctx.db, 1, "keep-alive");
    const post = [
      "POST /api/v1/products/view HTTP/1.1",
      "Host: 127.0.0.1",
      "Content-Type: application/json",
      `Authorization: Bearer ${INGEST_TOKEN}`,
      `Content-Length: ${JSON.stringify({ product_id: id }).length}`,
      "",
      JSON.stringify({ product_id: id }),
    ].join("\r\n");
    const one = async (i: number) => {
      await Bun.sleep(i * 700);
      const c = rawConnection(api.port);
      const first = await c.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      const timeout = Number(/keep-alive: *timeout=(\d+)/i.exec(first)?.[1]);
      // What a client that goes by the header may do (without one: by the configured HTTP_IDLE_TIMEOUT_S).
      await Bun.sleep((Number.isNaN(timeout) ? IDLE_S : timeout) * 1000);
      const second = await c.send(post);
      await c.end();
      return { first: first.split("\r\n")[0], timeout, second: second.split("\r\n")[0] };
    };
    const results = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => one(i)));
    expect(results).toEqual(
      Array.from({ length: CONNECTIONS }, () => ({ first: "HTTP/1.1 200 OK", timeout: IDLE_S, second: "HTTP/1.1 202 Accepted" })),
    );
    await waitFor("every POST counted", async () => (await viewCounts(ctx.db, [id!])).get(id!) === CONNECTIONS || undefined);
  });
});
