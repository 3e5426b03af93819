import { Elysia } from "elysia";
import type { HttpConfig } from "../config.ts";
import type { Views } from "./view-routes.ts";
import type { CallerOf } from "./caller.ts";
import type { ClientAddress } from "./client-address.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../metrics.ts";
import { createCorsPolicy } from "./cors.ts";
import { docs, openApiDocument, RAW_SPEC } from "./docs.ts";
import { errorResponse } from "./errors.ts";
import { opsRoutes } from "./ops-routes.ts";
import { productRoutes, type ProductService } from "./product-routes.ts";
import { describeValidationError } from "./validation.ts";
import { keepAliveHeader } from "./keep-alive.ts";
import { viewFastPath } from "./view-fast-path.ts";
import { viewRoutes } from "./view-routes.ts";

// The HTTP app: what every request shares (CORS, the latency metric, the one error mapping), then the route
// files: views (view-routes.ts), products and reads (product-routes.ts), operators (ops-routes.ts), docs.

export interface ApiDeps {
  http: HttpConfig;
  log: Logger;
  metrics: Registry;
  views: Views;
  callerOf: CallerOf;
  /** Who a request is from (http/client-address.ts): the live stream's per-address bound. */
  clientAddress: ClientAddress;
  products: ProductService;
  ready(): Promise<{ postgres: boolean; kafka: boolean }>;
}

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

  const cors = createCorsPolicy(http.corsOrigins);

  let spec: Record<string, unknown> | null = null;
  let allowedMethods: ((path: string) => string[]) | null = null;
  // Served by Bun's router ahead of Elysia's (view-fast-path.ts); app.handle() still reaches the Elysia routes.
  const fastPath = viewFastPath({
    http,
    log,
    views: deps.views,
    callerOf: deps.callerOf,
    cors,
    observerFor: (route, status) => requests.bind({ route, method: "POST", status }),
  });
  const keepAlive = keepAliveHeader(http.idleTimeoutS);
  const app = new Elysia({ serve: { routes: fastPath } })
    .onRequest(({ request, set }) => {
      started.set(request, performance.now());
      Object.assign(set.headers, keepAlive);
      return applyCors(request, set, cors, log);
    })
    .onAfterResponse(({ request, route, set }) => {
      const t0 = started.get(request);
      if (t0 === undefined) return;
      const status = typeof set.status === "number" ? set.status : 200;
      requests.observe((performance.now() - t0) / 1000, { route: route || "unmatched", method: request.method, status });
    })
    .onError(({ code, error, request, set }) => {
      allowedMethods ??= methodsFor(app.routes);
      return mapError(String(code), error, request, set, allowedMethods, log);
    })
    .use(docs())
    .use(opsRoutes(deps))
    .use(viewRoutes(deps))
    .use(productRoutes(deps))
    .get(
      "/swagger/json",
      async () => {
        spec ??= openApiDocument(
          (await (await app.handle(new Request(`http://localhost${RAW_SPEC}`))).json()) as Record<string, unknown>,
          http.adminToken !== undefined || !http.adminOpen,
        );
        return spec;
      },
      { detail: { hide: true } },
    );
  return app;
}

/** The app's type, for Elysia's typed client: `treaty<App>("http://127.0.0.1:8080")` from @elysiajs/eden. */
export type App = ReturnType<typeof createApp>;

interface ResponseSet {
  status?: number | string;
  headers: Record<string, string | number>;
}

/** A cross-origin request's CORS headers, or the answer to its preflight (204, or 403 for an origin not allowed). */
function applyCors(request: Request, set: ResponseSet, cors: ReturnType<typeof createCorsPolicy>, log: Logger): Response | undefined {
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
}

/** Elysia's errors as the service's JSON errors: 405 for a known path, 404, 400 for validation and parsing. */
function mapError(
  code: string,
  error: unknown,
  request: Request,
  set: ResponseSet,
  allowedMethods: (path: string) => string[],
  log: Logger,
) {
  let e: unknown = error;
  if (code === "NOT_FOUND" || code === "VALIDATION") {
    // GET /view would otherwise reach GET /:id and fail as "not a UUID": it is a known path, wrong method.
    const path = pathOf(request.url);
    const allow = allowedMethods(path);
    if (allow.length > 0 && !allow.includes(request.method)) {
      set.status = 405;
      return errorResponse(new AppError("method_not_allowed", `method ${request.method} is not allowed here`), log, {
        allow: allow.join(", "),
      });
    }
    if (code === "NOT_FOUND") e = new AppError("not_found", `no route for ${request.method} ${path}`);
  }
  if (code === "VALIDATION") e = new AppError("invalid_request", describeValidationError(error));
  else if (code === "PARSE") {
    // Elysia wraps whatever the body parser threw; our parser throws AppErrors (413, 415, 400).
    const cause = (error as Error).cause;
    e = cause instanceof AppError ? cause : new AppError("invalid_json", "request body is not valid JSON");
  }
  const res = errorResponse(e, log);
  set.status = res.status;
  return res;
}

/** The path of a request URL without building a URL object (hot path). */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}
