// The fixed list of error codes. The HTTP status of each lives in src/http/errors.ts, and only there.
export const ERROR_CODES = [
  "invalid_json",
  "invalid_request",
  "unsupported_media_type",
  "payload_too_large",
  "not_found",
  "product_not_found",
  "method_not_allowed",
  "unauthorized",
  "forbidden",
  "ingest_unavailable",
  "database_unavailable",
  "too_many_streams",
  "rate_limited",
  "ingest_token_required",
  "idempotency_key_invalid",
  "idempotency_key_reused",
  "idempotency_key_in_flight",
  "internal",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface AppErrorOptions {
  cause?: unknown;
  /** Whether the same request may succeed later unchanged (clients get Retry-After). */
  retryable?: boolean;
  /** Seconds a client should wait before retrying (Retry-After); implies retryable. */
  retryAfterS?: number;
  /** Extra machine-readable detail for the client, e.g. the unknown ids of a batch. */
  details?: Record<string, unknown>;
}

export class AppError extends Error {
  readonly retryable: boolean;
  readonly retryAfterS: number | undefined;
  readonly details: Record<string, unknown> | undefined;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "AppError";
    this.retryable = options.retryable ?? options.retryAfterS !== undefined;
    this.retryAfterS = options.retryAfterS;
    this.details = options.details;
  }
}
