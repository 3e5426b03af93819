import { timingSafeEqual as bytesEqual } from "node:crypto";
import { Elysia } from "elysia";
import { Type } from "@sinclair/typebox";
import type { HttpConfig } from "../config.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../metrics.ts";
import { BatchViewRequest, coalesceBatch, Uuid, ViewRequest, type ViewEvent } from "../domain/view.ts";
import { CreateProductRequest, normaliseNewProduct, parseTopLimit, Product, type NewProduct } from "../domain/product.ts";
import { readJsonBody } from "./body.ts";
import { createCorsPolicy } from "./cors.ts";
import { errorResponse } from "./errors.ts";
import { describeValidationError } from "./validation.ts";
import { docs, openApiDocument, RAW_SPEC } from "./docs.ts";
import { LIVE_PAGE } from "./live-page.ts";

export interface ApiDeps {
  http: HttpConfig;
  log: Logger;
  metrics: Registry;
  views: { record(events: readonly ViewEvent[]): Promise<void> };
  products: {
    create(p: NewProduct): Promise<Product>;
    get(id: string): Promise<Product | null>;
    /** The top list as JSON text (served as is). */
    topJson(limit: number): string;
    /** The top list as Server-Sent Events, pushed when it changes, until `signal` aborts. */
    topStream(limit: number, signal: AbortSignal): Response;
  };
  ready(): Promise<{ postgres: boolean; kafka: boolean }>;
}

const ErrorSchema = Type.Object(
  { error: Type.String(), code: Type.String() },
  { description: "Every error: a human message and a stable machine code", additionalProperties: true },
);
const err = (description: string) => ({ ...ErrorSchema, description });

const Readiness = Type.Object({
  status: Type.Union([Type.Literal("ready"), Type.Literal("not_ready")]),
  checks: Type.Object({ postgres: Type.Boolean(), kafka: Type.Boolean() }),
});

const Accepted = Type.Object({ status: Type.Literal("accepted"), message: Type.String() });
const ACCEPTED = { status: "accepted", message: "View recorded successfully" } as const;

const API = "/api/v1/products";

/**
 * The methods a path is served with, from the app's own routes: telling 405 (known path, other method) from 404.
 * As in the router, a static path wins over a parameter: GET /products/view is POST-only, not GET /products/:id.
 */
export function methodsFor(routes: readonly { method: string; path: string }[]): (path: string) => string[] {
  const compiled = routes.map((r) => ({
    method: r.method,
    static: !/[:*]/.test(r.path),
    re: new RegExp(
      `^${r.path
        .replace(/[.+?^${}()|[\]\\]/g, "\\$&")
        .replace(/:[^/]+/g, "[^/]+")
        .replace(/\*/g, ".*")}$`,
    ),
  }));
  return (path) => {
    const hits = compiled.filter((r) => r.re.test(path));
    const exact = hits.filter((r) => r.static);
    return [...new Set((exact.length > 0 ? exact : hits).map((r) => r.method))];
  };
}

export function createApp(deps: ApiDeps) {
  const { http, log, metrics } = deps;
  const requests = metrics.histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route and status",
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  const started = new WeakMap<Request, number>();

  const unauthorizedHeaders = { "www-authenticate": 'Bearer realm="product-views"' };

  const cors = createCorsPolicy(http.corsOrigins);

  let spec: Record<string, unknown> | null = null;
  let allowedMethods: ((path: string) => string[]) | null = null;
  // Each route with a body names its parser: its limit, and whether beacons' text/plain (navigator.sendBeacon
  // with a string, no-preflight fetches: the same JSON inside) is taken.
  const jsonBody =
    (limit: number, textPlain: boolean) =>
    ({ request }: { request: Request }) =>
      readJsonBody(request, limit, { textPlain });
  const viewBody = jsonBody(http.bodyLimitBytes, true);
  const batchBody = jsonBody(http.batchBodyLimitBytes, true);
  const productBody = jsonBody(http.bodyLimitBytes, false);
  const app = new Elysia()
    .onRequest(({ request, set }) => {
      started.set(request, performance.now());
      const origin = request.headers.get("origin");
      if (origin === null && request.method !== "OPTIONS") return;
      const path = pathOf(request.url);
      if (request.method === "OPTIONS") {
        const pre = cors.preflight(origin, path);
        if (pre === null) return; // not a cross-origin route: 405 with Allow, as for any other method
        if (!pre.allowed) {
          set.status = 403;
          return errorResponse(new AppError("forbidden", `origin ${origin} may not call this route (CORS_ORIGINS)`), log, pre.headers);
        }
        set.status = 204;
        return new Response(null, { status: 204, headers: pre.headers });
      }
      // Errors carry them too, so a page can read a 400 or a 503 and its Retry-After.
      const h = cors.headers(origin, path);
      if (h) Object.assign(set.headers, h);
    })
    .onAfterResponse(({ request, route, set }) => {
      const t0 = started.get(request);
      if (t0 === undefined) return;
      const status = typeof set.status === "number" ? set.status : 200;
      requests.observe((performance.now() - t0) / 1000, { route: route || "unmatched", method: request.method, status });
    })
    .onError(({ code, error, request, set }) => {
      let e: unknown = error;
      if (code === "NOT_FOUND" || code === "VALIDATION") {
        // GET /view would otherwise reach GET /:id and fail as "not a UUID": it is a known path, wrong method.
        const path = new URL(request.url).pathname;
        allowedMethods ??= methodsFor(app.routes);
        const allow = allowedMethods(path);
        if (allow.length > 0 && !allow.includes(request.method)) {
          const res = errorResponse(new AppError("method_not_allowed", `method ${request.method} is not allowed here`), log, {
            allow: allow.join(", "),
          });
          set.status = 405;
          return res;
        }
        if (code === "NOT_FOUND") e = new AppError("not_found", `no route for ${request.method} ${path}`);
      }
      if (code === "VALIDATION") e = new AppError("invalid_request", describeValidationError(error));
      else if (code === "PARSE") {
        // Elysia wraps whatever the body parser threw; our parser throws AppErrors (413, 415, 400).
        const cause = (error as Error).cause;
        e = cause instanceof AppError ? cause : new AppError("invalid_json", "request body is not valid JSON");
      }
      const res = errorResponse(e, log, e instanceof AppError && e.code === "unauthorized" ? unauthorizedHeaders : {});
      set.status = res.status;
      return res;
    })
    .use(docs())
    .get("/health", () => ({ status: "ok" as const }), {
      detail: { summary: "Liveness: the process answers", tags: ["ops"] },
      response: { 200: Type.Object({ status: Type.Literal("ok") }) },
    })
    .get(
      "/ready",
      async ({ set }) => {
        const checks = await deps.ready();
        const ok = Object.values(checks).every(Boolean);
        if (!ok) set.status = 503;
        return { status: ok ? "ready" : "not_ready", checks };
      },
      {
        detail: { summary: "Readiness: Postgres and Kafka reachable", tags: ["ops"] },
        response: {
          200: Readiness,
          503: Readiness,
        },
      },
    )
    .get("/metrics", () => new Response(metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4" } }), {
      detail: { summary: "Prometheus metrics", tags: ["ops"] },
    })
    .post(
      `${API}/view`,
      async ({ body, set }) => {
        await deps.views.record([{ product_id: body.product_id.toLowerCase(), count: 1 }]);
        set.status = 202;
        return ACCEPTED;
      },
      {
        parse: viewBody,
        body: ViewRequest,
        detail: {
          summary: "Record one product view",
          description:
            "Answers 202 once Kafka has acknowledged the event (acks=all). With INGEST_ACK=queued, 202 means queued in the producer.",
          tags: ["views"],
        },
        response: {
          202: Accepted,
          400: err("Malformed JSON or a missing / non-UUID product_id"),
          404: err("Unknown product (no event produced)"),
          413: err("Body larger than BODY_LIMIT_BYTES"),
          415: err("Content-Type is not application/json"),
          503: err("Kafka could not take the event in time; retry after Retry-After seconds"),
        },
      },
    )
    .post(
      `${API}/views`,
      async ({ body, set }) => {
        const events = coalesceBatch(body.views);
        await deps.views.record(events);
        set.status = 202;
        return { accepted: body.views.reduce((n, v) => n + (v.count ?? 1), 0) };
      },
      {
        parse: batchBody,
        body: BatchViewRequest,
        detail: {
          summary: "Record a batch of views (1..1000 items, count 1..1000 each)",
          description: "All or nothing: the first bad item is named by its index; unknown products are listed in unknown_ids.",
          tags: ["views"],
        },
        response: {
          202: Type.Object({ accepted: Type.Integer({ minimum: 1 }) }),
          400: err("Malformed JSON or an invalid item (the error names its index)"),
          404: err("Some products are unknown (unknown_ids lists them); nothing was recorded"),
          413: err("Body larger than BATCH_BODY_LIMIT_BYTES"),
          415: err("Content-Type is not application/json"),
          503: err("Kafka could not take the events in time; retry after Retry-After seconds"),
        },
      },
    )
    .get(
      `${API}/top`,
      ({ request }) => new Response(deps.products.topJson(topLimitOf(request)), { headers: { "content-type": "application/json" } }),
      {
        detail: {
          // Documented here, parsed by the handler: the raw string must be checked ("1e3", "007", repeats).
          parameters: [{ name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 100, default: 10 } }],
          summary: "Most viewed products (view_count desc, ties by id)",
          description: "Served from memory, refreshed after every worker flush: at most flush interval + one refresh old.",
          tags: ["products"],
        },
        response: {
          200: Type.Array(Product),
          400: err("limit is not an integer in 1..100"),
          503: err("The database has been unreachable for too long to serve a fresh list"),
        },
      },
    )
    .get(`${API}/top/stream`, ({ request }) => deps.products.topStream(topLimitOf(request), request.signal), {
      detail: {
        parameters: [{ name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 100, default: 10 } }],
        summary: "Most viewed products, live (Server-Sent Events)",
        description:
          "Event `top` with the same JSON array as GET /top, sent at once and again each time the list changes; a comment line every few seconds keeps the connection open.",
        tags: ["products"],
      },
      response: {
        // Served as text/event-stream, which the document says (docs.ts).
        200: Type.String({ description: "Server-Sent Events: `event: top` with the JSON array of GET /top" }),
        400: err("limit is not an integer in 1..100"),
        503: err("Too many live streams are open"),
      },
    })
    .get("/", () => new Response(LIVE_PAGE, { headers: { "content-type": "text/html; charset=utf-8" } }), {
      detail: { hide: true },
    })
    .get(
      `${API}/:id`,
      async ({ params }) => {
        const product = await deps.products.get(params.id.toLowerCase());
        if (!product) throw new AppError("product_not_found", `product ${params.id} not found`);
        return product;
      },
      {
        params: Type.Object({ id: Uuid }),
        detail: { summary: "A product by id", tags: ["products"] },
        response: {
          200: Product,
          400: err("id is not a UUID"),
          404: err("Unknown product"),
          503: err("The database is unavailable"),
        },
      },
    )
    .post(
      API,
      async ({ body, headers, set }) => {
        if (http.adminToken !== undefined) {
          const auth = headers.authorization;
          if (!auth) throw new AppError("unauthorized", "this route requires Authorization: Bearer <admin token>");
          if (!timingSafeEqual(auth, `Bearer ${http.adminToken}`)) throw new AppError("forbidden", "the admin token is not valid");
        }
        const product = await deps.products.create(normaliseNewProduct(body));
        set.status = 201;
        set.headers.location = `${API}/${product.id}`;
        return product;
      },
      {
        parse: productBody,
        body: CreateProductRequest,
        detail: {
          summary: "Create a product",
          description: "Requires Authorization: Bearer <ADMIN_TOKEN> when ADMIN_TOKEN is set.",
          tags: ["products"],
          security: [{ bearer: [] }],
        },
        response: {
          201: Product,
          400: err("Invalid body"),
          401: err("Missing bearer token (ADMIN_TOKEN is set)"),
          403: err("Wrong bearer token"),
          413: err("Body larger than BODY_LIMIT_BYTES"),
          415: err("Content-Type is not application/json"),
          503: err("The database is unavailable"),
        },
      },
    )
    .get(
      "/swagger/json",
      async () => {
        spec ??= openApiDocument(
          (await (await app.handle(new Request(`http://localhost${RAW_SPEC}`))).json()) as Record<string, unknown>,
          http.adminToken !== undefined,
        );
        return spec;
      },
      { detail: { hide: true } },
    );
  return app;
}

/** The app's type, for Elysia's typed client: `treaty<App>("http://127.0.0.1:8080")` from @elysiajs/eden. */
export type App = ReturnType<typeof createApp>;

/** ?limit= of /top and its stream, read from the raw URL: a repeated ?limit= is refused, not reduced to one value. */
function topLimitOf(request: Request): number {
  const limits = new URL(request.url).searchParams.getAll("limit");
  const limit = parseTopLimit(limits.length > 1 ? limits : limits[0]);
  if (typeof limit === "string") throw new AppError("invalid_request", limit);
  return limit;
}

/** The path of a request URL without building a URL object (hot path). */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

function timingSafeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && bytesEqual(x, y);
}
