import { AppError, type ErrorCode } from "../errors.ts";
import type { Logger } from "../log.ts";

// The only place where error codes meet HTTP statuses.
const STATUS: Record<ErrorCode, number> = {
  invalid_json: 400,
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  ingest_token_required: 403,
  not_found: 404,
  product_not_found: 404,
  method_not_allowed: 405,
  idempotency_key_invalid: 400,
  idempotency_key_in_flight: 409,
  idempotency_key_reused: 422,
  payload_too_large: 413,
  rate_limited: 429,
  unsupported_media_type: 415,
  internal: 500,
  ingest_unavailable: 503,
  database_unavailable: 503,
  too_many_streams: 503,
};

export const RETRY_AFTER_SECONDS = 1;

export interface ErrorBody {
  error: string;
  code: ErrorCode;
  [detail: string]: unknown;
}

/** Turns anything thrown into the client's JSON error; internals (stack, SQL, paths) are only logged. */
export function errorResponse(err: unknown, log: Logger, headers: Record<string, string> = {}): Response {
  const e = err instanceof AppError ? err : null;
  if (!e || e.code === "internal") log.error({ err }, "unhandled error");
  else if (e.retryable) log.debug({ code: e.code, cause: e.cause }, e.message);
  const code: ErrorCode = e?.code ?? "internal";
  const body: ErrorBody = { ...(e?.details ?? {}), error: e ? e.message : "internal server error", code };
  const h: Record<string, string> = { "content-type": "application/json", ...headers };
  if (code === "unauthorized") h["www-authenticate"] = 'Bearer realm="product-views"';
  if (e?.retryable) h["retry-after"] = String(e.retryAfterS ?? RETRY_AFTER_SECONDS);
  return new Response(JSON.stringify(body), { status: STATUS[code], headers: h });
}
