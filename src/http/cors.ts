// Which routes a page on another origin may call, and the headers that say so. Views and reads are meant to be
// called from shop pages anywhere (CORS_ORIGINS, default any origin); product creation and the operator routes
// are not, so they never carry Access-Control-* headers and their preflight fails.
//
// No credentials are involved (no cookies, no auth on these routes), so "*" is safe for the default.

import { API } from "./responses.ts";

/** The method a cross-origin page may use on `path` (null: not a cross-origin route). */
export function corsMethod(path: string): "GET" | "POST" | null {
  if (!path.startsWith(`${API}/`)) return null;
  const rest = path.slice(API.length + 1);
  if (rest === "view" || rest === "views") return "POST";
  if (rest === "top/stream" || (rest.length > 0 && !rest.includes("/"))) return "GET"; // /top, its stream, /{id}
  return null;
}

export interface CorsPolicy {
  /** Headers for an answer to `origin` on `path` (any status); null when none apply. */
  headers(origin: string | null, path: string): Record<string, string> | null;
  /** The answer to a preflight: 204 with the allowances, or null when `path` is no cross-origin route. */
  preflight(origin: string | null, path: string): { allowed: boolean; headers: Record<string, string> } | null;
}

/** One day: a page's first view pays the preflight, later ones (the browser caps this at 2 h) do not. */
export const PREFLIGHT_MAX_AGE_S = 86_400;

export function createCorsPolicy(origins: "*" | readonly string[]): CorsPolicy {
  const list = origins === "*" ? null : new Set(origins);
  const allowOrigin = (origin: string | null): string | null => {
    if (list === null) return "*";
    return origin !== null && list.has(origin.toLowerCase()) ? origin : null;
  };
  // With a list, the answer depends on the Origin header: caches must key on it.
  const vary: Record<string, string> = list === null ? {} : { vary: "Origin" };
  return {
    headers(origin, path) {
      if (origin === null || corsMethod(path) === null) return null;
      const allow = allowOrigin(origin);
      if (allow === null) return vary; // only with a list, so vary is set
      return { "access-control-allow-origin": allow, "access-control-expose-headers": "Retry-After", ...vary };
    },
    preflight(origin, path) {
      const method = corsMethod(path);
      if (method === null) return null;
      const allow = allowOrigin(origin);
      if (allow === null) return { allowed: false, headers: { ...vary } };
      return {
        allowed: true,
        headers: {
          "access-control-allow-origin": allow,
          "access-control-allow-methods": method,
          // A page that retries a view sends its Idempotency-Key (view-routes.ts), a header that needs the preflight's leave.
          "access-control-allow-headers": method === "POST" ? "Content-Type, Idempotency-Key" : "Content-Type",
          "access-control-max-age": String(PREFLIGHT_MAX_AGE_S),
          ...vary,
        },
      };
    },
  };
}
