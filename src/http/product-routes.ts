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
import { Uuid } from "../domain/view.ts";
import { AppError } from "../errors.ts";
import { readJsonBody } from "./body.ts";
import type { ClientAddress } from "./client-address.ts";
import { API, err } from "./responses.ts";

// Reads (the top list, its live stream, a product by id) and product creation.

export interface ProductService {
  create(p: NewProduct): Promise<Product>;
  get(id: string): Promise<Product | null>;
  /** The top list by `by` as JSON text (served as is). */
  topJson(limit: number, by: Rank): string;
  /** The top list as Server-Sent Events, pushed when it changes, until `signal` aborts. */
  topStream(limit: number, signal: AbortSignal, by: Rank, address: string): Response;
}

export function productRoutes(deps: { http: HttpConfig; products: ProductService; clientAddress: ClientAddress }) {
  const { http } = deps;
  const productBody = ({ request }: { request: Request }) => readJsonBody(request, http.bodyLimitBytes);
  return new Elysia({ name: "products" })
    .get(
      `${API}/top`,
      ({ request }) =>
        new Response(deps.products.topJson(topLimitOf(request), rankOf(request)), { headers: { "content-type": "application/json" } }),
      {
        detail: {
          // Documented here, parsed by the handler: the raw string must be checked ("1e3", "007", repeats).
          parameters: [LIMIT_PARAMETER, BY_PARAMETER],
          summary: "Most viewed products (view_count desc, or unique_viewers desc with ?by=unique_viewers; ties by id)",
          description: "Served from memory, refreshed after every worker flush: at most flush interval + one refresh old.",
          tags: ["products"],
        },
        response: {
          200: Type.Array(Product),
          400: err("limit is not an integer in 1..100, or by is not view_count or unique_viewers"),
          503: err("The database has been unreachable for too long to serve a fresh list"),
        },
      },
    )
    .get(
      `${API}/top/stream`,
      ({ request, server }) => {
        const address = deps.clientAddress(server?.requestIP(request)?.address ?? null, request.headers.get("x-forwarded-for"));
        return deps.products.topStream(topLimitOf(request), request.signal, rankOf(request), address);
      },
      {
        detail: {
          parameters: [LIMIT_PARAMETER, BY_PARAMETER],
          summary: "Most viewed products, live (Server-Sent Events)",
          description:
            "Event `top` with the same JSON array as GET /top, sent at once and again each time the list changes; a comment line every few seconds keeps the connection open.",
          tags: ["products"],
        },
        response: {
          // Served as text/event-stream, which the document says (docs.ts).
          200: Type.String({ description: "Server-Sent Events: `event: top` with the JSON array of GET /top" }),
          400: err("limit is not an integer in 1..100, or by is not view_count or unique_viewers"),
          503: err("Too many live streams are open"),
        },
      },
    )
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

/** ?by= of /top and its stream, given at most once. */
function rankOf(request: Request): Rank {
  const values = new URL(request.url).searchParams.getAll("by");
  const by = parseRank(values.length > 1 ? values : values[0]);
  if (!(RANKS as readonly string[]).includes(by)) throw new AppError("invalid_request", by);
  return by as Rank;
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
