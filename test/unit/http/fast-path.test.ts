import { describe, expect, test } from "bun:test";
import { AppError } from "../../../src/errors.ts";
import { createApp } from "../../../src/http/app.ts";
import { createLogger } from "../../../src/log.ts";
import { loadConfig } from "../../../src/config.ts";
import { Registry } from "../../../src/metrics.ts";
import { inProcessApp, TEST_ID as ID } from "./in-process.ts";

// POST /view and /views are served by Bun's router ahead of Elysia (src/http/view-fast-path.ts). Each case here
// goes once through the documented Elysia route (app.handle) and once through what is served, each with a fresh
// app: status, every header and the body must be the same, and so must what reached the recorder.

const PAGE = "https://shop.example";
const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

const cases: [name: string, path: string, init: () => RequestInit][] = [
  ["a view", "view", () => json({ product_id: ID })],
  ["a view with upper-case id and unknown properties", "view", () => json({ product_id: ID.toUpperCase(), page: "/shoes" })],
  ["a view from another origin", "view", () => json({ product_id: ID }, { origin: PAGE })],
  ["a beacon (text/plain)", "view", () => ({ ...json({ product_id: ID }), headers: { "content-type": "text/plain;charset=UTF-8" } })],
  ["a view with an Idempotency-Key", "view", () => json({ product_id: ID }, { "idempotency-key": '"k-1"' })],
  ["a malformed Idempotency-Key", "view", () => json({ product_id: ID }, { "idempotency-key": '"a"b"' })],
  ["bad JSON", "view", () => json("{nope")],
  ["bad JSON from another origin", "view", () => json("{nope", { origin: PAGE })],
  ["an empty body", "view", () => json("")],
  ["a JSON array", "view", () => json([ID])],
  ["no product_id", "view", () => json({ id: ID })],
  ["a product_id that is no UUID", "view", () => json({ product_id: "42" })],
  ["a product_id that is a number", "view", () => json({ product_id: 42 })],
  ["a form body", "view", () => ({ method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "a=1" })],
  ["no content type", "view", () => ({ method: "POST", body: JSON.stringify({ product_id: ID }) })],
  ["a declared length over the limit", "view", () => json({ product_id: ID, pad: "x".repeat(70_000) })],
  ["a body nested too deep", "view", () => json(`{"product_id":"${ID}","x":${"[".repeat(40)}${"]".repeat(40)}}`)],
  ["a batch", "views", () => json({ views: [{ product_id: ID, count: 3 }, { product_id: ID.toUpperCase() }] })],
  [
    "a batch from another origin with a key",
    "views",
    () => json({ views: [{ product_id: ID }] }, { origin: PAGE, "idempotency-key": "b-1" }),
  ],
  ["an empty batch", "views", () => json({ views: [] })],
  ["a batch item with a bad count", "views", () => json({ views: [{ product_id: ID }, { product_id: ID, count: 0 }] })],
  ["a batch item without id", "views", () => json({ views: [{ product_id: ID }, { count: 2 }] })],
  ["a batch of 1001 items", "views", () => json({ views: Array.from({ length: 1001 }, () => ({ product_id: ID })) })],
];

async function exchange(
  via: "elysia" | "served",
  path: string,
  init: RequestInit,
  opts: { env?: Record<string, string>; failViews?: Error; public?: boolean; before?: RequestInit[] } = {},
) {
  const a = inProcessApp(opts);
  const url = `/api/v1/products/${path}`;
  for (const earlier of opts.before ?? []) await (via === "elysia" ? a.call(url, earlier) : a.served(url, earlier));
  const res = await (via === "elysia" ? a.call(url, init) : a.served(url, init));
  return {
    status: res.status,
    headers: Object.fromEntries(res.headers),
    body: await res.text(),
    recorded: a.recorded,
    keys: a.keys,
  };
}

describe("the served view routes answer as the documented ones", () => {
  for (const [name, path, init] of cases) {
    test(`${name}: same status, headers, body and recording`, async () => {
      const documented = await exchange("elysia", path, init());
      const served = await exchange("served", path, init());
      expect(served).toEqual(documented);
    });
  }

  test("a batch whose views are no array: the same 400, and the served one names what is wrong", async () => {
    // The one known difference: Elysia normalises the body before it describes the failure, and then names
    // views[0]; the served route describes the body as it came.
    const init = () => json({ views: { product_id: ID } });
    const documented = await exchange("elysia", "views", init());
    const served = await exchange("served", "views", init());
    expect({ ...served, body: "" }).toEqual({ ...documented, body: "" });
    expect(JSON.parse(served.body)).toEqual({ error: "views must be an array of 1..1000 items", code: "invalid_request" });
  });

  test("a listed origin and one that is not get the same Vary and allowances from both", async () => {
    const env = { CORS_ORIGINS: PAGE };
    for (const origin of [PAGE, "https://evil.example"]) {
      const documented = await exchange("elysia", "view", json({ product_id: ID }, { origin }), { env });
      const served = await exchange("served", "view", json({ product_id: ID }, { origin }), { env });
      expect(served).toEqual(documented);
      expect(served.headers.vary).toBe("Origin");
    }
  });

  test("a 503 from Kafka carries written and Retry-After on both", async () => {
    const failViews = new AppError("ingest_unavailable", "kafka did not confirm", { retryable: true, details: { written: "unknown" } });
    const documented = await exchange("elysia", "view", json({ product_id: ID }, { origin: PAGE }), { failViews });
    const served = await exchange("served", "view", json({ product_id: ID }, { origin: PAGE }), { failViews });
    expect(served).toEqual(documented);
    expect(served.status).toBe(503);
    expect(served.headers["retry-after"]).toBe("1");
    expect(JSON.parse(served.body).written).toBe("unknown");
  });

  test("an unexpected error is a generic 500 on both, its message kept from the client", async () => {
    const failViews = new Error("connection string postgres://secret@db");
    const documented = await exchange("elysia", "views", json({ views: [{ product_id: ID }] }), { failViews });
    const served = await exchange("served", "views", json({ views: [{ product_id: ID }] }), { failViews });
    expect(served).toEqual(documented);
    expect(served.status).toBe(500);
    expect(served.body).not.toContain("secret");
  });
});

const BROWSER = { "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36" };
const publicCases: [
  name: string,
  path: string,
  init: () => RequestInit,
  opts?: { env?: Record<string, string>; before?: RequestInit[] },
][] = [
  ["a public view", "view", () => json({ product_id: ID }, BROWSER)],
  ["a public repeat", "view", () => json({ product_id: ID }, BROWSER), { before: [json({ product_id: ID }, BROWSER)] }],
  ["a crawler", "view", () => json({ product_id: ID }, { "user-agent": "Googlebot/2.1 (+http://www.google.com/bot.html)" })],
  ["a public batch with a count", "views", () => json({ views: [{ product_id: ID, count: 2 }] }, BROWSER)],
  ["a public batch over the limit", "views", () => json({ views: Array.from({ length: 101 }, () => ({ product_id: ID })) }, BROWSER)],
  [
    "a public batch naming a product twice",
    "views",
    () => json({ views: [{ product_id: ID }, { product_id: ID.toUpperCase() }] }, BROWSER),
  ],
  ["a token that is not an ingest token", "view", () => json({ product_id: ID }, { authorization: "Bearer nope" })],
  [
    "the ingest token",
    "views",
    () => json({ views: [{ product_id: ID, count: 5 }] }, { authorization: "Bearer ingest-token-for-tests-0001" }),
  ],
  [
    "a foreign origin with a list",
    "view",
    () => json({ product_id: ID }, { ...BROWSER, origin: "https://evil.example" }),
    { env: { CORS_ORIGINS: PAGE } },
  ],
  [
    "a cross-site form with a list",
    "view",
    () => json({ product_id: ID }, { ...BROWSER, "sec-fetch-site": "cross-site" }),
    { env: { CORS_ORIGINS: PAGE } },
  ],
  [
    "a viewer over its rate",
    "views",
    () => json({ views: [{ product_id: ID }] }, BROWSER),
    {
      env: { RATE_VIEWER_BURST: "100", RATE_VIEWER_PER_S: "1" },
      before: [
        json(
          { views: Array.from({ length: 100 }, (_, i) => ({ product_id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}` })) },
          BROWSER,
        ),
      ],
    },
  ],
];

describe("public callers: the served view routes answer as the documented ones", () => {
  for (const [name, path, init, opts] of publicCases) {
    test(`${name}: same status, headers, body and recording`, async () => {
      const env = { INGEST_TOKEN: "ingest-token-for-tests-0001", VIEWER_SECRET: "v".repeat(32), ...opts?.env };
      const o = { public: true, ...opts, env };
      const documented = await exchange("elysia", path, init(), o);
      const served = await exchange("served", path, init(), o);
      expect(served).toEqual(documented);
      expect({ name, status: served.status, body: JSON.parse(served.body), retryAfter: served.headers["retry-after"] }).toMatchSnapshot();
    });
  }
});

describe("the served app", () => {
  test("serves POST on the view paths, hands their other methods to Elysia, and times each request once", async () => {
    const metrics = new Registry();
    const recorded: unknown[] = [];
    const app = createApp({
      http: loadConfig({}).http,
      log: createLogger("silent", "test"),
      metrics,
      views: { record: async (events) => void recorded.push(events), recordPublic: async () => Promise.reject(new Error("unused")) },
      callerOf: () => ({ kind: "trusted" }),
      clientAddress: () => "",
      products: {
        create: async () => Promise.reject(new Error("unused")),
        get: async () => null,
        topJson: () => "[]",
        topStream: () => new Response(""),
        series: async () => null,
      },
      ready: async () => ({ postgres: true, kafka: true }),
    });
    const server = app.listen({ port: 0, hostname: "127.0.0.1" }).server!;
    try {
      const base = `http://127.0.0.1:${server.port}/api/v1/products`;
      expect((await fetch(`${base}/view`, json({ product_id: ID }))).status).toBe(202);
      expect((await fetch(`${base}/views`, json({ views: [{ product_id: ID, count: 2 }] }))).status).toBe(202);
      const pre = await fetch(`${base}/view`, { method: "OPTIONS", headers: { origin: PAGE, "access-control-request-method": "POST" } });
      expect(pre.status).toBe(204);
      const get = await fetch(`${base}/view`);
      expect(get.status).toBe(405);
      expect(get.headers.get("allow")).toBe("POST");
      expect(recorded).toEqual([[{ product_id: ID, count: 1 }], [{ product_id: ID, count: 2 }]]);
      const text = metrics.render();
      expect(text).toContain('http_request_duration_seconds_count{method="POST",route="/api/v1/products/view",status="202"} 1\n');
      expect(text).toContain('http_request_duration_seconds_count{method="POST",route="/api/v1/products/views",status="202"} 1\n');
    } finally {
      server.stop(true);
    }
  });
});
