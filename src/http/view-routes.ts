import { Type } from "@sinclair/typebox";
import { Elysia } from "elysia";
import type { OpenAPIV3 } from "openapi-types";
import type { HttpConfig } from "../config.ts";
import { parseIdempotencyKey } from "../domain/idempotency-key.ts";
import { BatchViewRequest, coalesceBatch, ViewRequest, type ViewEvent } from "../domain/view.ts";
import { readJsonBody } from "./body.ts";
import { API, err } from "./responses.ts";

// POST /view and /views. Each names its body parser: its limit, and that beacons' text/plain (navigator.sendBeacon
// with a string, no-preflight fetches: the same JSON inside) is taken.

const Accepted = Type.Object({ status: Type.Literal("accepted"), message: Type.String() });
const ACCEPTED = { status: "accepted", message: "View recorded successfully" } as const;

export interface Views {
  record(events: readonly ViewEvent[], idempotencyKey?: string): Promise<void>;
}

const KEY_HEADER = "idempotency-key";

// What each route does once its body is parsed and valid: shared by these documented routes and the served
// fast path (view-fast-path.ts), so the two can differ only in how a request reaches them.

/** POST /view: one view of a product. */
export async function recordView(views: Views, body: ViewRequest, request: Request): Promise<typeof ACCEPTED> {
  const key = parseIdempotencyKey(request.headers.get(KEY_HEADER));
  await views.record([{ product_id: body.product_id.toLowerCase(), count: 1 }], key);
  return ACCEPTED;
}

/** POST /views: a batch, merged per product; answers how many views it accepted. */
export async function recordBatch(views: Views, body: BatchViewRequest, request: Request): Promise<{ accepted: number }> {
  const key = parseIdempotencyKey(request.headers.get(KEY_HEADER));
  await views.record(coalesceBatch(body.views), key);
  return { accepted: body.views.reduce((n, v) => n + (v.count ?? 1), 0) };
}

const KEY_DOC =
  " With an `Idempotency-Key` header (1..255 printable ASCII characters, quoted as the IETF draft's sf-string or bare), a request repeated with the same key and body within IDEMPOTENCY_WINDOW_S (default 10 minutes) is counted once, whatever became of the earlier attempts (202, 503, timeout, cut connection); the repeat answers 202 once it is or gets counted.";

/** The header in the OpenAPI document (declared only there: a headers schema would make Elysia parse every header of every request). */
const KEY_PARAMETER: OpenAPIV3.ParameterObject = {
  name: "Idempotency-Key",
  in: "header",
  required: false,
  description: "Counts a repeated request once within IDEMPOTENCY_WINDOW_S (quoted sf-string or bare)",
  schema: { type: "string", minLength: 1, maxLength: 255, pattern: "^[\\x20-\\x7e]+$" },
};

export function viewRoutes(deps: { http: HttpConfig; views: Views }) {
  const { http } = deps;
  const viewBody = ({ request }: { request: Request }) => readJsonBody(request, http.bodyLimitBytes, { textPlain: true });
  const batchBody = ({ request }: { request: Request }) => readJsonBody(request, http.batchBodyLimitBytes, { textPlain: true });
  return new Elysia({ name: "views" })
    .post(
      `${API}/view`,
      async ({ body, set, request }) => {
        const accepted = await recordView(deps.views, body, request);
        set.status = 202;
        return accepted;
      },
      {
        parse: viewBody,
        body: ViewRequest,
        detail: {
          summary: "Record one product view",
          description:
            "Answers 202 once Kafka has acknowledged the event (acks=all). With INGEST_ACK=queued, 202 means queued in the producer." +
            KEY_DOC,
          tags: ["views"],
          parameters: [KEY_PARAMETER],
        },
        response: {
          202: Accepted,
          400: err("Malformed JSON, a missing / non-UUID product_id, or a malformed Idempotency-Key"),
          404: err("Unknown product (no event produced)"),
          409: err("A request with this Idempotency-Key is still in flight; retry after Retry-After seconds"),
          413: err("Body larger than BODY_LIMIT_BYTES"),
          415: err("Content-Type is not application/json"),
          422: err("This Idempotency-Key was used with a different body"),
          503: err("Kafka could not take the event in time; retry after Retry-After seconds"),
        },
      },
    )
    .post(
      `${API}/views`,
      async ({ body, set, request }) => {
        const accepted = await recordBatch(deps.views, body, request);
        set.status = 202;
        return accepted;
      },
      {
        parse: batchBody,
        body: BatchViewRequest,
        detail: {
          summary: "Record a batch of views (1..1000 items, count 1..1000 each)",
          description: "All or nothing: the first bad item is named by its index; unknown products are listed in unknown_ids." + KEY_DOC,
          tags: ["views"],
          parameters: [KEY_PARAMETER],
        },
        response: {
          202: Type.Object({ accepted: Type.Integer({ minimum: 1 }) }),
          400: err("Malformed JSON, an invalid item (the error names its index), or a malformed Idempotency-Key"),
          404: err("Some products are unknown (unknown_ids lists them); nothing was recorded"),
          409: err("A request with this Idempotency-Key is still in flight; retry after Retry-After seconds"),
          413: err("Body larger than BATCH_BODY_LIMIT_BYTES"),
          415: err("Content-Type is not application/json"),
          422: err("This Idempotency-Key was used with a different body"),
          503: err("Kafka could not take the events in time; retry after Retry-After seconds"),
        },
      },
    );
}
