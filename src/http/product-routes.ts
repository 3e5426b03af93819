import { timingSafeEqual as bytesEqual } from "node:crypto";
import { Type } from "@sinclair/typebox";
import { Elysia } from "elysia";
import type { OpenAPIV3 } from "openapi-types";
import type { HttpConfig } from "../config.ts";
import {
  CreateProductRequest,
  type NewProduct,
  normaliseNewProduct,
  parseRank,
  parseTopLimit,
  Product,
  RANKS,
  type Rank,
} from "../domain/product.ts";
import { Uuid, canonicalId } from "../domain/view.ts";
import { BUCKETS, MAX_POINTS, parseSeries, parseWindow, type SeriesQuery, type Window, WINDOWS } from "../domain/history.ts";
import { AppError } from "../errors.ts";
import { readJsonBody } from "./body.ts";
import type { ClientAddress } from "./client-address.ts";
import { API, err } from "./responses.ts";

// Reads (the top list, its live stream, a product by id) and product creation.

export interface ProductService {
  create(p: NewProduct): Promise<Product>;
  get(id: string): Promise<Product | null>;
  /** The top list by `by`, all-time or of a window, as JSON text (served as is). */
  topJson(limit: number, by: Rank, window: Window | "all"): string;
  /** The top list as Server-Sent Events, pushed when it changes, until `signal` aborts. */
  topStream(limit: number, signal: AbortSignal, by: Rank, address: string, window: Window | "all"): Response;
  /** A product's views per bucket, zero-filled; null for an unknown product. */
  series(id: string, q: SeriesQuery): Promise<Series | null>;
}

export const Series = Type.Object(
  {
    product_id: Uuid,
    bucket: Type.Union([Type.Literal("minute"), Type.Literal("hour"), Type.Literal("day")]),
    from: Type.String({ format: "date-time", description: "Start of the first bucket" }),
    to: Type.String({ format: "date-time", description: "Start of the last bucket" }),
    total: Type.Integer({ minimum: 0, description: "Views in the buckets listed" }),
    points: Type.Array(Type.Object({ t: Type.String({ format: "date-time" }), views: Type.Integer({ minimum: 0 }) }), {
      maxItems: MAX_POINTS,
    }),
  },
  { description: "A product's views per bucket of acceptance time (UTC), every bucket listed" },
);
export type Series = typeof Series.static;

type Deps = { http: HttpConfig; products: ProductService; clientAddress: ClientAddress };

export function productRoutes(deps: Deps) {
  return new Elysia({ name: "products" }).use(topRoutes(deps)).use(readRoutes(deps)).use(createRoute(deps));
}

/** GET /top and its live stream. */
function topRoutes(deps: Deps) {
  return new Elysia({ name: "products-top" })
    .get(
      `${API}/top`,
      ({ request }) =>
        new Response(deps.products.topJson(topLimitOf(request), ...rankAndWindowOf(request)), {
          headers: { "content-type": "application/json" },
        }),
      {
        detail: {
          // Documented here, parsed by the handler: the raw string must be checked ("1e3", "007", repeats).
          parameters: [LIMIT_PARAMETER, BY_PARAMETER, WINDOW_PARAMETER],
          summary: "Most viewed products (view_count desc, or unique_viewers desc with ?by=unique_viewers; ties by id)",
          description:
            "Served from memory. All time: refreshed after every worker flush. ?window=1h|24h|7d: the views accepted in the window " +
            "(whole buckets: the current minute and the 59 before it; the current hour and the 23 or 167 before it), each item with " +
            "`window` and `window_views`; 1h follows the flushes, 24h and 7d are re-ranked every TOP_WINDOW_REFRESH_MS and at each hour.",
          tags: ["products"],
        },
        response: {
          200: Type.Array(Product),
          400: err("limit is not an integer in 1..100, by is not view_count or unique_viewers, or window is not 1h, 24h, 7d or all"),
          503: err("The database has been unreachable for too long to serve a fresh list"),
        },
      },
    )
    .get(
      `${API}/top/stream`,
      ({ request, server }) => {
        const address = deps.clientAddress(server?.requestIP(request)?.address ?? null, request.headers.get("x-forwarded-for"));
        const [by, window] = rankAndWindowOf(request);
        return deps.products.topStream(topLimitOf(request), request.signal, by, address, window);
      },
      {
        detail: {
          parameters: [LIMIT_PARAMETER, BY_PARAMETER, WINDOW_PARAMETER],
          summary: "Most viewed products, live (Server-Sent Events)",
          description:
            "Event `top` with the same JSON array as GET /top, sent at once and again each time the list changes; a comment line every few seconds keeps the connection open.",
          tags: ["products"],
        },
        response: {
          // Served as text/event-stream, which the document says (docs.ts).
          200: Type.String({ description: "Server-Sent Events: `event: top` with the JSON array of GET /top" }),
          400: err("limit is not an integer in 1..100, by is not view_count or unique_viewers, or window is not 1h, 24h, 7d or all"),
          503: err("Too many live streams are open"),
        },
      },
    );
}

/** A product by id, and its series. */
function readRoutes(deps: Deps) {
  return new Elysia({ name: "products-read" })
    .get(
      `${API}/:id/views`,
      async ({ params, request }) => {
        const q = parseSeries(onceEach(request, ["bucket", "from", "to"]), Date.now());
        if ("error" in q) throw new AppError("invalid_request", q.error);
        const series = await deps.products.series(canonicalId(params.id), q);
        if (!series) throw new AppError("product_not_found", `product ${params.id} not found`);
        return series;
      },
      {
        params: Type.Object({ id: Uuid }),
        detail: {
          parameters: SERIES_PARAMETERS,
          summary: "A product's views over time",
          description:
            "Views per minute, hour or day (UTC) of the time the API accepted them, every bucket from `from` to `to` listed (zero " +
            `where none), at most ${MAX_POINTS} points. Minutes are kept HISTORY_MINUTE_DAYS, hours HISTORY_HOUR_DAYS; over the ` +
            "whole range kept, hours and days sum to the product's view_count.",
          tags: ["products"],
        },
        response: {
          200: Series,
          400: err(
            `id is not a UUID, bucket is not minute, hour or day, from/to are not ISO 8601 times, or more than ${MAX_POINTS} points`,
          ),
          404: err("Unknown product"),
          503: err("The database is unavailable"),
        },
      },
    )
    .get(
      `${API}/:id`,
      async ({ params }) => {
        const product = await deps.products.get(canonicalId(params.id));
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
    );
}

/** POST /products: behind the admin token. */
function createRoute(deps: Deps) {
  const { http } = deps;
  const productBody = ({ request }: { request: Request }) => readJsonBody(request, http.bodyLimitBytes);
  return new Elysia({ name: "products-create" }).post(
    API,
    async ({ body, headers, set }) => {
      if (http.adminToken !== undefined) {
        const auth = headers.authorization;
        if (!auth) throw new AppError("unauthorized", "this route requires Authorization: Bearer <admin token>");
        if (!timingSafeEqual(auth, `Bearer ${http.adminToken}`)) throw new AppError("forbidden", "the admin token is not valid");
      } else if (!http.adminOpen) {
        throw new AppError(
          "unauthorized",
          "product creation is closed: the operator sets ADMIN_TOKEN (or ADMIN_OPEN=1 to open it to anyone)",
        );
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
        description:
          "Requires Authorization: Bearer <ADMIN_TOKEN>; without ADMIN_TOKEN it answers 401 unless the operator set ADMIN_OPEN=1.",
        tags: ["products"],
        security: [{ bearer: [] }],
      },
      response: {
        201: Product,
        400: err("Invalid body"),
        401: err("Missing bearer token, or no ADMIN_TOKEN configured (and ADMIN_OPEN is not 1)"),
        403: err("Wrong bearer token"),
        413: err("Body larger than BODY_LIMIT_BYTES"),
        415: err("Content-Type is not application/json"),
        503: err("The database is unavailable"),
      },
    },
  );
}

const LIMIT_PARAMETER: OpenAPIV3.ParameterObject = {
  name: "limit",
  in: "query",
  required: false,
  schema: { type: "integer", minimum: 1, maximum: 100, default: 10 },
};
const BY_PARAMETER: OpenAPIV3.ParameterObject = {
  name: "by",
  in: "query",
  required: false,
  description: "Rank by all-time views, or by distinct public viewers (only products that have any)",
  schema: { type: "string", enum: [...RANKS], default: "view_count" },
};

const WINDOW_PARAMETER: OpenAPIV3.ParameterObject = {
  name: "window",
  in: "query",
  required: false,
  description: "All time, or the views accepted in the last hour, day or week (by=view_count only)",
  schema: { type: "string", enum: [...WINDOWS], default: "all" },
};

const SERIES_PARAMETERS: OpenAPIV3.ParameterObject[] = [
  { name: "bucket", in: "query", required: false, schema: { type: "string", enum: [...BUCKETS], default: "hour" } },
  {
    name: "from",
    in: "query",
    required: false,
    description: "First bucket (ISO 8601, rounded down); default: 59 minutes, 23 hours or 29 days before `to`",
    schema: { type: "string", format: "date-time" },
  },
  {
    name: "to",
    in: "query",
    required: false,
    description: "Last bucket (ISO 8601, rounded down); default: now",
    schema: { type: "string", format: "date-time" },
  },
];

/** Query parameters given at most once each (a repeat is the array of its values, which the parsers refuse). */
function onceEach(request: Request, names: readonly string[]): Record<string, unknown> {
  const params = new URL(request.url).searchParams;
  const out: Record<string, unknown> = {};
  for (const n of names) {
    const values = params.getAll(n);
    if (values.length > 0) out[n] = values.length > 1 ? values : values[0];
  }
  return out;
}

/** ?by= and ?window= of /top and its stream, each given at most once; unique viewers are all-time only. */
function rankAndWindowOf(request: Request): [Rank, Window | "all"] {
  const q = onceEach(request, ["by", "window"]);
  const by = parseRank(q.by);
  if (!(RANKS as readonly string[]).includes(by)) throw new AppError("invalid_request", by);
  const window = parseWindow(q.window);
  if (typeof window === "object") throw new AppError("invalid_request", window.error);
  if (window !== "all" && by !== "view_count") throw new AppError("invalid_request", "by=unique_viewers has no window: use window=all");
  return [by as Rank, window];
}

/** ?limit= of /top and its stream, read from the raw URL: a repeated ?limit= is refused, not reduced to one value. */
function topLimitOf(request: Request): number {
  const limits = new URL(request.url).searchParams.getAll("limit");
  const limit = parseTopLimit(limits.length > 1 ? limits : limits[0]);
  if (typeof limit === "string") throw new AppError("invalid_request", limit);
  return limit;
}

function timingSafeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && bytesEqual(x, y);
}
