import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { start as startApi } from "../../src/entry/api.ts";
import { start as startWorker } from "../../src/entry/worker.ts";
import { loadConfig } from "../../src/config.ts";
import { decodeViewMessage } from "../../src/domain/view.ts";
import { seedProducts, viewCounts } from "./harness/db.ts";
import { post } from "./harness/http.ts";
import { readTopic } from "./harness/kafka.ts";
import { freePort, prepare, spawnService, testEnv } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

const ADMIN = "test-admin-token-0123456789";

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = (await res.json()) as Record<string, unknown>;
  expect(body.code).toBe(code);
  expect(typeof body.error).toBe("string");
  // Never internals: no stack frames, SQL or file paths in what a client sees.
  expect(JSON.stringify(body)).not.toMatch(/\n\s+at |SELECT |INSERT |UPDATE |\/src\/|node_modules|\.ts:\d/);
  return body;
}

/** Whether a message of the topic carries a view of `product` (messages are not keyed: see ingest/lane-batch.ts). */
function names(m: { payload: Buffer | null }, product: string): boolean {
  const group = decodeViewMessage(m.payload);
  return (
    !!group &&
    (group.views.some((v) => v.product_id === product) || !!group.keyed?.some((k) => k.views.some((v) => v.product_id === product)))
  );
}

describe("HTTP API on real Kafka and Postgres", () => {
  const env = testEnv({ ADMIN_TOKEN: ADMIN });
  let ctx: Awaited<ReturnType<typeof prepare>>;
  let api: Awaited<ReturnType<typeof startApi>>;
  let worker: Awaited<ReturnType<typeof startWorker>>;
  let url: string;
  let ids: string[];

  beforeAll(async () => {
    ctx = await prepare(env);
    ids = await seedProducts(ctx.db, 5, "api");
    api = await startApi(ctx.config);
    worker = await startWorker(ctx.config);
    url = `http://127.0.0.1:${api.port}`;
  });
  afterAll(async () => {
    await bounded("api.stop", api?.stop() ?? Promise.resolve());
    await bounded("worker.stop", worker?.stop() ?? Promise.resolve());
    await bounded("ctx.db.close", ctx.db.close());
  });

  test("POST /view answers the original body with 202 and the event is in the topic", async () => {
    const res = await post(`${url}/api/v1/products/view`, { product_id: ids[0] });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ status: "accepted", message: "View recorded successfully" });
    const msgs = await readTopic(ctx.config, 1);
    const mine = msgs.filter((m) => names(m, ids[0]!));
    expect(mine).toHaveLength(1);
    expect(decodeViewMessage(mine[0]!.payload)?.views).toEqual([{ product_id: ids[0]!, count: 1 }]);
  });

  test("an upper-case UUID is the same product", async () => {
    const res = await post(`${url}/api/v1/products/view`, { product_id: ids[4]!.toUpperCase() });
    expect(res.status).toBe(202);
    await waitFor("count", async () => (await viewCounts(ctx.db, [ids[4]!])).get(ids[4]!) === 1);
  });

  test("a view of an unknown product is 404 and produces nothing", async () => {
    const ghost = crypto.randomUUID();
    await expectError(await post(`${url}/api/v1/products/view`, { product_id: ghost }), 404, "product_not_found");
    const msgs = await readTopic(ctx.config, 0, 3000);
    expect(msgs.filter((m) => names(m, ghost))).toHaveLength(0);
  });

  test("POST /views accepts a batch, counts every view, and the views reach view_count", async () => {
    const before = await viewCounts(ctx.db, [ids[1]!, ids[2]!]);
    const res = await post(`${url}/api/v1/products/views`, {
      views: [{ product_id: ids[1] }, { product_id: ids[2], count: 7 }, { product_id: ids[1], count: 2 }],
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 10 });
    await waitFor("batch counted", async () => {
      const now = await viewCounts(ctx.db, [ids[1]!, ids[2]!]);
      return now.get(ids[1]!)! - before.get(ids[1]!)! === 3 && now.get(ids[2]!)! - before.get(ids[2]!)! === 7;
    });
  });

  test("a batch naming an unknown product is refused whole, listing it", async () => {
    const ghost = crypto.randomUUID();
    const body = await expectError(
      await post(`${url}/api/v1/products/views`, { views: [{ product_id: ids[3] }, { product_id: ghost }] }),
      404,
      "product_not_found",
    );
    expect(body.unknown_ids).toEqual([ghost]);
    const msgs = await readTopic(ctx.config, 0, 3000);
    expect(msgs.filter((m) => names(m, ids[3]!))).toHaveLength(0);
  });

  test.each([
    ["missing product_id", {}, "product_id is required"],
    ["non-UUID product_id", { product_id: "42" }, "product_id must be a UUID"],
    ["UUID in braces", { product_id: `{${crypto.randomUUID()}}` }, "product_id must be a UUID"],
    ["SQL text", { product_id: "'; DROP TABLE products; --" }, "product_id must be a UUID"],
    ["number id", { product_id: 123 }, "product_id must be a UUID"],
    ["array body", [], "must be a JSON object"],
    ["string body", '"x"', "must be a JSON object"],
    ["null body", "null", "must be a JSON object"],
  ])("POST /view with %s is 400", async (_, body, message) => {
    const res = await post(`${url}/api/v1/products/view`, body);
    const b = await expectError(res, 400, "invalid_request");
    expect(String(b.error)).toContain(message);
  });

  test("malformed JSON is 400 invalid_json", async () => {
    await expectError(await post(`${url}/api/v1/products/view`, "{not json"), 400, "invalid_json");
    await expectError(await post(`${url}/api/v1/products/view`, ""), 400, "invalid_json");
  });

  test("a content type other than JSON (or text/plain JSON on the view routes) is 415", async () => {
    await expectError(await post(`${url}/api/v1/products/view`, "{}", { "content-type": "text/html" }), 415, "unsupported_media_type");
    await expectError(
      await post(`${url}/api/v1/products`, JSON.stringify({ name: "x" }), {
        "content-type": "text/plain",
        authorization: `Bearer ${ADMIN}`,
      }),
      415,
      "unsupported_media_type",
    );
  });

  test("a body over the limit is 413, declared or chunked", async () => {
    const big = JSON.stringify({ product_id: ids[0], pad: "x".repeat(100_000) });
    await expectError(await post(`${url}/api/v1/products/view`, big), 413, "payload_too_large");
    const chunked = new ReadableStream({
      start(c) {
        for (let i = 0; i < 20; i++) c.enqueue(new TextEncoder().encode("x".repeat(8192)));
        c.close();
      },
    });
    const res = await fetch(`${url}/api/v1/products/view`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chunked,
    });
    await expectError(res, 413, "payload_too_large");
  });

  test("batch validation is all-or-nothing and names the first bad index", async () => {
    const b = await expectError(
      await post(`${url}/api/v1/products/views`, {
        views: [{ product_id: ids[0] }, { product_id: ids[0], count: 0 }, { product_id: "x" }],
      }),
      400,
      "invalid_request",
    );
    expect(String(b.error)).toContain("views[1].count");
    await expectError(await post(`${url}/api/v1/products/views`, { views: [] }), 400, "invalid_request");
    const tooMany = { views: Array.from({ length: 1001 }, () => ({ product_id: ids[0], count: 1000 })) };
    await expectError(await post(`${url}/api/v1/products/views`, tooMany), 400, "invalid_request");
  });

  test("the largest valid batch fits the body limit: 1000 items, count 1000 each, pretty-printed", async () => {
    const full = { views: Array.from({ length: 1000 }, () => ({ product_id: ids[3]!.toUpperCase(), count: 1000 })) };
    const res = await post(`${url}/api/v1/products/views`, JSON.stringify(full, null, 2));
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 1_000_000 });
  });

  test("GET /top orders by view_count desc then id, honours limit, and rejects bad limits", async () => {
    // Other test files leave products behind, so compare with Postgres itself rather than with fixed ids.
    const top = await waitFor("top equal to the database's", async () => {
      const expected = await ctx.db.sql<{ id: string }[]>`SELECT id FROM products ORDER BY view_count DESC, id LIMIT 100`;
      const t = (await (await fetch(`${url}/api/v1/products/top?limit=100`)).json()) as Array<{ id: string; view_count: number }>;
      return t.map((p) => p.id).join() === expected.map((r) => r.id).join() ? t : undefined;
    });
    for (let i = 1; i < top.length; i++) {
      const [a, b] = [top[i - 1]!, top[i]!];
      expect(a.view_count > b.view_count || (a.view_count === b.view_count && a.id < b.id)).toBe(true);
    }
    const two = await fetch(`${url}/api/v1/products/top?limit=2`);
    expect(((await two.json()) as unknown[]).length).toBeLessThanOrEqual(2);
    const dflt = (await (await fetch(`${url}/api/v1/products/top`)).json()) as unknown[];
    expect(dflt.length).toBeLessThanOrEqual(10);
    for (const bad of ["0", "-1", "101", "1e3", "abc", "1&limit=2", "10.5", ""]) {
      await expectError(await fetch(`${url}/api/v1/products/top?limit=${bad}`), 400, "invalid_request");
    }
  });

  test("GET /products/:id returns the product, 404 when unknown, 400 when not a UUID", async () => {
    const res = await fetch(`${url}/api/v1/products/${ids[0]}`);
    expect(res.status).toBe(200);
    const p = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(p).sort()).toEqual(["created_at", "description", "id", "name", "unique_viewers", "updated_at", "view_count"]);
    expect(p.id).toBe(ids[0]);
    await expectError(await fetch(`${url}/api/v1/products/${crypto.randomUUID()}`), 404, "product_not_found");
    await expectError(await fetch(`${url}/api/v1/products/not-a-uuid`), 400, "invalid_request");
  });

  test("POST /products needs the admin token when one is set, and answers 201 with Location", async () => {
    const body = { name: "Lamp ✨ — ランプ", description: "unicode is fine", view_count: 3 };
    await expectError(await post(`${url}/api/v1/products`, body), 401, "unauthorized");
    await expectError(await post(`${url}/api/v1/products`, body, { authorization: "Bearer wrong-token-wrong-token" }), 403, "forbidden");
    const res = await post(`${url}/api/v1/products`, body, { authorization: `Bearer ${ADMIN}` });
    expect(res.status).toBe(201);
    const p = (await res.json()) as { id: string; name: string; view_count: number; description: string };
    expect(res.headers.get("location")).toBe(`/api/v1/products/${p.id}`);
    expect(p).toMatchObject({ name: body.name, description: body.description, view_count: 3 });
    // Known at once: a view right after creation is accepted even though the id was looked up before.
    expect((await post(`${url}/api/v1/products/view`, { product_id: p.id })).status).toBe(202);
  });

  test.each([
    ["no name", { description: "x" }],
    ["empty name", { name: "" }],
    ["long name", { name: "x".repeat(201) }],
    ["long description", { name: "x", description: "d".repeat(2001) }],
    ["negative view_count", { name: "x", view_count: -1 }],
    ["fractional view_count", { name: "x", view_count: 1.5 }],
    ["NUL in the name", { name: "a\u0000b" }],
    ["NUL in the description", { name: "x", description: "\u0000" }],
  ])("POST /products with %s is 400", async (_, body) => {
    await expectError(await post(`${url}/api/v1/products`, body, { authorization: `Bearer ${ADMIN}` }), 400, "invalid_request");
  });

  test("unknown routes are 404 and wrong methods 405, in the error shape", async () => {
    await expectError(await fetch(`${url}/nope`), 404, "not_found");
    const res = await fetch(`${url}/api/v1/products/top`, { method: "DELETE" });
    await expectError(res, 405, "method_not_allowed");
    expect(res.headers.get("allow")).toContain("GET");
    await expectError(await fetch(`${url}/api/v1/products/view`), 405, "method_not_allowed");
  });

  test("health, readiness and metrics answer", async () => {
    expect(await (await fetch(`${url}/health`)).json()).toEqual({ status: "ok" });
    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { postgres: true, kafka: true } });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain("views_produced_total");
    expect(metrics).toMatch(/http_request_duration_seconds_bucket\{.*route="\/api\/v1\/products\/view".*status="202"/);
    expect(metrics).toContain("producer_queue_depth");
  });

  test("the stream's events are described (OpenAPI 3.2 itemSchema) and the events it sends fit the description", async () => {
    type Media = { itemSchema: { properties: Record<string, { enum?: string[]; contentMediaType?: string; contentSchema?: unknown }> } };
    const spec = (await (await fetch(`${url}/swagger/json`)).json()) as {
      paths: Record<string, { get: { responses: Record<string, { content: Record<string, unknown> }> } }>;
    };
    const media = spec.paths["/api/v1/products/top/stream"]!.get.responses["200"]!.content["text/event-stream"] as Media;
    const props = media.itemSchema.properties;
    expect(props.event!.enum).toEqual(["top"]);
    expect(props.data!.contentMediaType).toBe("application/json");
    const topJson = spec.paths["/api/v1/products/top"]!.get.responses["200"]!.content["application/json"] as { schema: unknown };
    expect(props.data!.contentSchema).toEqual(topJson.schema);
    // What the stream sends: the retry line, then a top event whose data is the list GET /top answers.
    const ac = new AbortController();
    const res = await fetch(`${url}/api/v1/products/top/stream?limit=3`, { signal: ac.signal });
    const reader = res.body!.getReader();
    let text = "";
    while (!text.includes("event: top")) text += new TextDecoder().decode((await reader.read()).value);
    while (!text.slice(text.indexOf("event: top")).includes("\n\n")) text += new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    const events = text
      .split("\n\n")
      .filter((b) => b.trim() !== "" && !b.startsWith(":"))
      .map((b) => Object.fromEntries(b.split("\n").map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()])));
    expect(events[0]).toEqual({ retry: "2000" });
    const top = events.find((e) => e.event === "top")!;
    expect(Object.keys(top).sort()).toEqual(["data", "event"]);
    const list = JSON.parse(top.data!) as Record<string, unknown>[];
    expect(list.length).toBeLessThanOrEqual(3);
    for (const p of list)
      expect(Object.keys(p).sort()).toEqual(["created_at", "description", "id", "name", "unique_viewers", "updated_at", "view_count"]);
  });

  test("the OpenAPI document lists every route with its error responses, and the UI is served offline", async () => {
    const spec = (await (await fetch(`${url}/swagger/json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    expect(spec.openapi).toMatch(/^3\./);
    expect(Object.keys(spec.paths).sort()).toEqual(
      [
        "/api/v1/products",
        "/api/v1/products/top",
        "/api/v1/products/top/stream",
        "/api/v1/products/view",
        "/api/v1/products/views",
        "/api/v1/products/{id}",
        "/api/v1/products/{id}/views",
        "/health",
        "/metrics",
        "/ready",
      ].sort(),
    );
    const view = spec.paths["/api/v1/products/view"]!.post! as {
      responses: Record<string, unknown>;
      parameters?: { name: string; in: string }[];
    };
    expect(Object.keys(view.responses).sort()).toEqual([
      "200",
      "202",
      "400",
      "401",
      "403",
      "404",
      "409",
      "413",
      "415",
      "422",
      "429",
      "503",
    ]);
    expect(view.parameters).toContainEqual(expect.objectContaining({ name: "Idempotency-Key", in: "header" }));
    for (const page of ["/swagger", "/swagger/index.html"]) {
      const html = await (await fetch(`${url}${page}`)).text();
      expect(html).toContain("/swagger/assets/swagger-ui-bundle.js");
      expect(html).not.toMatch(/https?:\/\//);
    }
    const js = await fetch(`${url}/swagger/assets/swagger-ui-bundle.js`);
    expect(js.status).toBe(200);
    expect((await js.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });
});

describe("HTTP API without an admin token", () => {
  test("product creation is closed (401) unless the operator opens it with ADMIN_OPEN=1", async () => {
    const env = testEnv({ ADMIN_OPEN: "0" });
    const { config, db } = await prepare(env);
    const closed = await startApi(loadConfig(env));
    const open = await startApi(loadConfig({ ...env, ADMIN_OPEN: "1" }));
    try {
      const refused = await post(`http://127.0.0.1:${closed.port}/api/v1/products`, { name: "closed" });
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { code: string }).code).toBe("unauthorized");
      expect(refused.headers.get("www-authenticate")).toContain("Bearer");
      expect((await post(`http://127.0.0.1:${open.port}/api/v1/products`, { name: "open" })).status).toBe(201);
    } finally {
      await bounded("api.stop", Promise.all([closed.stop(), open.stop()]));
      await bounded("db.close", db.close());
    }
    expect(config.http.adminToken).toBeUndefined();
  });
});

describe("API and worker with Kafka unreachable", () => {
  for (const kind of ["api", "worker"] as const) {
    test(`the ${kind}'s librdkafka lines come out as our JSON logs of the librdkafka component, a few per window and a count of the rest`, async () => {
      // Nothing listens on that port: each librdkafka client (the API's producer lanes, the worker's consumer) reports a
      // failed connect every second or so, as events of its queue: no native library writes to stdout.
      const env = testEnv({ KAFKA_BROKERS: `127.0.0.1:${await freePort()}`, LOG_LEVEL: "info" });
      await prepare({ ...testEnv(), KAFKA_TOPIC: env.KAFKA_TOPIC! });
      const api = await spawnService(kind, env);
      try {
        // Whole lines only: the last one may still be on its way.
        const records = () =>
          api
            .output()
            .split("\n")
            .slice(0, -1)
            .filter((l) => l.trim())
            .map((l) => JSON.parse(l) as Record<string, unknown>);
        const native = () => records().filter((r) => r.component === "librdkafka");
        // Which comes first in a window, log lines or error events, is librdkafka's to decide (2.16 fills the first
        // window's five with log lines): wait for both kinds and for a window's left-out lines counted.
        await waitFor(
          "an error event, a log line and a window's left-out lines counted",
          () =>
            api.output().includes("more librdkafka lines in the last window") &&
            native().some((r) => typeof r.code === "number") &&
            native().some((r) => r.facility === "FAIL"),
          60_000,
          200,
        );
        // The log events name librdkafka's facility (FAIL: a connection failed); its error events, the code.
        const lines = native();
        expect(lines.some((r) => r.level === "error" && r.facility === "FAIL" && String(r.msg).includes("Connect to"))).toBe(true);
        expect(lines.some((r) => typeof r.code === "number" && r.fatal === false)).toBe(true);
        expect(lines.every((r) => r.name === kind && typeof r.pid === "number")).toBe(true);
        // Nothing in another schema (a native library printing its own JSON) reached stdout.
        expect(records().filter((r) => "fields" in r)).toEqual([]);
        expect(lines.find((r) => r.suppressed !== undefined)!.suppressed).toBeGreaterThan(0);
      } finally {
        await bounded(`${kind} kill`, api.kill("SIGTERM"));
      }
    });
  }
});
