import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { HttpConfig } from "../config.ts";
import { BatchViewRequest, ViewRequest } from "../domain/view.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { readJsonBody } from "./body.ts";
import type { CorsPolicy } from "./cors.ts";
import { errorResponse } from "./errors.ts";
import { keepAliveHeader } from "./keep-alive.ts";
import { API } from "./responses.ts";
import { describeValidationError } from "./validation.ts";
import type { Caller } from "../ingest/admission.ts";
import type { CallerOf } from "./caller.ts";
import { type Answer, recordBatch, recordView, type Views } from "./view-routes.ts";

// The two view routes are the service's hot path, and Elysia's per-request machinery (its context, the hooks,
// the after-response task, response validation) cost a noticeable share of the API's CPU per view (bench/RESULTS.md).
// So Bun's router hands POST /view and POST /views straight to the handlers below; every other
// request, including the other methods of these paths (a CORS preflight, a 405), still goes through Elysia.
//
// They answer as the documented Elysia routes of view-routes.ts do: the same body parser, schema, route work
// (recordView, recordBatch), CORS policy, error mapping and latency metric. test/unit/http/fast-path.test.ts sends
// the same requests to both and compares status, headers and body, so the two cannot drift apart unseen.

/** The latency observer of a route's answers with one status (the app's request histogram, bound once per pair). */
export type ObserverFor = (route: string, status: number) => (seconds: number) => void;

export interface FastPathDeps {
  http: HttpConfig;
  log: Logger;
  views: Views;
  cors: CorsPolicy;
  callerOf: CallerOf;
  observerFor: ObserverFor;
}

export type FastHandler = (request: Request, server?: { requestIP(r: Request): { address: string } | null }) => Promise<Response>;

// As Elysia writes an object it returns.
const JSON_TYPE = "application/json;charset=utf-8";

/** Bun `routes` entries for the two view paths (POST only). */
export function viewFastPath(deps: FastPathDeps): Record<string, { POST: FastHandler }> {
  const view = route(deps, `${API}/view`, deps.http.bodyLimitBytes, ViewRequest, recordView);
  const views = route(deps, `${API}/views`, deps.http.batchBodyLimitBytes, BatchViewRequest, recordBatch);
  return { [`${API}/view`]: { POST: view }, [`${API}/views`]: { POST: views } };
}

function route<T>(
  deps: FastPathDeps,
  path: string,
  limit: number,
  schema: TSchema,
  work: (views: Views, body: T, request: Request, caller: Caller) => Promise<Answer>,
): FastHandler {
  const check = TypeCompiler.Compile(schema);
  const { cors, log } = deps;
  const observers = new Map<number, (seconds: number) => void>();
  const plain = { "content-type": JSON_TYPE, ...keepAliveHeader(deps.http.idleTimeoutS) };
  const errorHeaders = keepAliveHeader(deps.http.idleTimeoutS);
  const observerOf = (status: number) => {
    let o = observers.get(status);
    if (!o) {
      o = deps.observerFor(path, status);
      observers.set(status, o);
    }
    return o;
  };
  return async (request, server) => {
    const t0 = performance.now();
    const origin = request.headers.get("origin");
    const corsHeaders = origin === null ? null : cors.headers(origin, path);
    let res: Response;
    try {
      const body = await readJsonBody(request, limit, { textPlain: true });
      if (!check.Check(body)) {
        throw new AppError("invalid_request", describeValidationError({ type: "body", all: [check.Errors(body).First()] }));
      }
      // After the body, as in the Elysia route (its handler runs once the body is parsed and valid).
      const caller = deps.callerOf(request, server?.requestIP(request)?.address ?? null);
      const answer = await work(deps.views, body as T, request, caller);
      res = new Response(JSON.stringify(answer.body), {
        status: answer.status,
        headers: corsHeaders ? { ...plain, ...corsHeaders } : plain,
      });
    } catch (err) {
      res = errorResponse(err, log, corsHeaders ? { ...errorHeaders, ...corsHeaders } : errorHeaders);
    }
    observerOf(res.status)((performance.now() - t0) / 1000);
    return res;
  };
}
