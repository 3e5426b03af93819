import { Type } from "@sinclair/typebox";
import { Elysia } from "elysia";
import type { HttpConfig } from "../config.ts";
import { BatchViewRequest, coalesceBatch, ViewRequest, type ViewEvent } from "../domain/view.ts";
import { readJsonBody } from "./body.ts";
import { API, err } from "./responses.ts";

// POST /view and /views. Each names its body parser: its limit, and that beacons' text/plain (navigator.sendBeacon
// with a string, no-preflight fetches: the same JSON inside) is taken.

const Accepted = Type.Object({ status: Type.Literal("accepted"), message: Type.String() });
const ACCEPTED = { status: "accepted", message: "View recorded successfully" } as const;

export function viewRoutes(deps: { http: HttpConfig; views: { record(events: readonly ViewEvent[]): Promise<void> } }) {
  const { http } = deps;
  const viewBody = ({ request }: { request: Request }) => readJsonBody(request, http.bodyLimitBytes, { textPlain: true });
  const batchBody = ({ request }: { request: Request }) => readJsonBody(request, http.batchBodyLimitBytes, { textPlain: true });
  return new Elysia({ name: "views" })
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
    );
}
