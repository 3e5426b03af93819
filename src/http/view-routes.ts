import { Type } from "@sinclair/typebox";
import { Elysia } from "elysia";
import type { OpenAPIV3 } from "openapi-types";
import type { HttpConfig } from "../config.ts";
import { parseIdempotencyKey } from "../domain/idempotency-key.ts";
import { BatchViewRequest, coalesceBatch, ViewRequest, canonicalId } from "../domain/view.ts";
import type { Caller } from "../ingest/admission.ts";
import type { ViewRecorder } from "../ingest/views.ts";
import type { CallerOf } from "./caller.ts";
import { readJsonBody } from "./body.ts";
import { API, err } from "./responses.ts";

// POST /view and /views. Each names its body parser: its limit, and that beacons' text/plain (navigator.sendBeacon
// with a string, no-preflight fetches: the same JSON inside) is taken.

const Accepted = Type.Object({ status: Type.Literal("accepted"), message: Type.String() });
const ACCEPTED = { status: "accepted", message: "View recorded successfully" } as const;
const Ignored = Type.Object(
  { status: Type.Literal("ignored"), reason: Type.Union([Type.Literal("repeat"), Type.Literal("bot")]) },
  { description: "Nothing was counted: a repeat of a view counted within VIEW_REPEAT_WINDOW_S, or a bot's User-Agent" },
);

export type Views = ViewRecorder;

/** What a view route answers: 202 when views were counted, 200 when none were (repeat, bot). */
export interface Answer {
  status: 200 | 202;
  body: unknown;
}

const KEY_HEADER = "idempotency-key";

// What each route does once its body is parsed and valid: shared by these documented routes and the served
// fast path (view-fast-path.ts), so the two can differ only in how a request reaches them.

/** POST /view: one view of a product. */
export async function recordView(views: Views, body: ViewRequest, request: Request, caller: Caller): Promise<Answer> {
  const key = parseIdempotencyKey(request.headers.get(KEY_HEADER));
  if (caller.kind === "trusted") {
    await views.record([{ product_id: canonicalId(body.product_id), count: 1 }], key);
    return { status: 202, body: ACCEPTED };
  }
  const outcome = await views.recordPublic(caller, [body], key);
  if ("reason" in outcome) return { status: 200, body: { status: "ignored", reason: outcome.reason } };
  return { status: 202, body: ACCEPTED };
}

/** POST /views: a batch, merged per product; answers how many views it accepted (and ignored, for the public). */
export async function recordBatch(views: Views, body: BatchViewRequest, request: Request, caller: Caller): Promise<Answer> {
  const key = parseIdempotencyKey(request.headers.get(KEY_HEADER));
  if (caller.kind === "trusted") {
    await views.record(coalesceBatch(body.views), key);
    return { status: 202, body: { accepted: body.views.reduce((n, v) => n + (v.count ?? 1), 0) } };
  }
  const outcome = await views.recordPublic(caller, body.views, key);
  if ("reason" in outcome) return { status: 200, body: { status: "ignored", reason: outcome.reason } };
  return {
    status: 202,
    body: outcome.ignored > 0 ? { accepted: outcome.counted, ignored: outcome.ignored } : { accepted: outcome.counted },
  };
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

/** POST /view in the OpenAPI document: what it does and every answer. */
const VIEW_DOCS = {
  detail: {
    summary: "Record one product view",
    description:
      "Answers 202 once Kafka has acknowledged the event (acks=all). With INGEST_ACK=queued, 202 means queued in the producer." + KEY_DOC,
    tags: ["views"],
    parameters: [KEY_PARAMETER],
  },
  response: {
    200: Ignored,
    202: Accepted,
    400: err("Malformed JSON, a missing / non-UUID product_id, or a malformed Idempotency-Key"),
    401: err("An Authorization header that carries no ingest token (INGEST_TOKEN)"),
    403: err("The request's Origin is not in CORS_ORIGINS"),
    404: err("Unknown product (no event produced)"),
    409: err("A request with this Idempotency-Key is still in flight; retry after Retry-After seconds"),
    413: err("Body larger than BODY_LIMIT_BYTES"),
    415: err("Content-Type is not application/json"),
    422: err("This Idempotency-Key was used with a different body"),
    429: err("Too many views from this viewer or address; retry after Retry-After seconds"),
    503: err("Kafka could not take the event in time; retry after Retry-After seconds"),
  },
};

/** POST /views in the OpenAPI document. */
const BATCH_DOCS = {
  detail: {
    summary:
      "Record a batch of views (1..1000 items, count 1..1000 each, with an ingest token; public: 1..PUBLIC_MAX_BATCH_ITEMS items, count 1)",
    description:
      "All or nothing: the first bad item is named by its index; unknown products are listed in unknown_ids. A public caller's items pass the rules of README's \"What counts as a view\" (bots, rates, repeats)." +
      KEY_DOC,
    tags: ["views"],
    parameters: [KEY_PARAMETER],
  },
  response: {
    200: Ignored,
    202: Type.Object({
      accepted: Type.Integer({ minimum: 1, description: "Views counted" }),
      ignored: Type.Optional(
        Type.Integer({
          minimum: 1,
          description:
            "Public items not counted: repeats (of a view counted within VIEW_REPEAT_WINDOW_S, or of another item of this batch)",
        }),
      ),
    }),
    400: err("Malformed JSON, an invalid item (the error names its index), or a malformed Idempotency-Key"),
    401: err("An Authorization header that carries no ingest token (INGEST_TOKEN)"),
    403: err(
      "The request's Origin is not in CORS_ORIGINS, or a public batch over PUBLIC_MAX_BATCH_ITEMS or with a count above 1 (ingest_token_required)",
    ),
    404: err("Some products are unknown (unknown_ids lists them); nothing was recorded"),
    409: err("A request with this Idempotency-Key is still in flight; retry after Retry-After seconds"),
    413: err("Body larger than BATCH_BODY_LIMIT_BYTES"),
    415: err("Content-Type is not application/json"),
    422: err("This Idempotency-Key was used with a different body"),
    429: err("Too many views from this viewer or address; retry after Retry-After seconds"),
    503: err("Kafka could not take the events in time; retry after Retry-After seconds"),
  },
};

export function viewRoutes(deps: { http: HttpConfig; views: Views; callerOf: CallerOf }) {
  const { http } = deps;
  const viewBody = ({ request }: { request: Request }) => readJsonBody(request, http.bodyLimitBytes, { textPlain: true });
  const batchBody = ({ request }: { request: Request }) => readJsonBody(request, http.batchBodyLimitBytes, { textPlain: true });
  return new Elysia({ name: "views" })
    .post(
      `${API}/view`,
      async ({ body, set, request, server }) => {
        const answer = await recordView(deps.views, body, request, deps.callerOf(request, server?.requestIP(request)?.address ?? null));
        set.status = answer.status;
        return answer.body as typeof ACCEPTED;
      },
      {
        parse: viewBody,
        body: ViewRequest,
        ...VIEW_DOCS,
      },
    )
    .post(
      `${API}/views`,
      async ({ body, set, request, server }) => {
        const answer = await recordBatch(deps.views, body, request, deps.callerOf(request, server?.requestIP(request)?.address ?? null));
        set.status = answer.status;
        return answer.body as { accepted: number };
      },
      {
        parse: batchBody,
        body: BatchViewRequest,
        ...BATCH_DOCS,
      },
    );
}
