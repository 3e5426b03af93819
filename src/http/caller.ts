import { timingSafeEqual } from "node:crypto";
import type { Caller } from "../ingest/admission.ts";
import { AppError } from "../errors.ts";
import type { ClientAddress } from "./client-address.ts";

// Who sent a view request: a trusted integration (a bearer token from INGEST_TOKEN), or the public (anyone
// else, attributed to its client address and User-Agent). And whether it may send at all: with CORS_ORIGINS a
// list, a request from a page on another origin is refused, although CORS alone cannot stop it (a text/plain
// POST needs no preflight, and the browser sends it whatever the answer's headers say).

export type CallerOf = (request: Request, peer: string | null) => Caller;

export interface CallerOptions {
  ingestTokens: readonly string[];
  corsOrigins: "*" | readonly string[];
  clientAddress: ClientAddress;
}

export function createCallerOf(opts: CallerOptions): CallerOf {
  const tokens = opts.ingestTokens.map((t) => Buffer.from(`Bearer ${t}`));
  const origins = opts.corsOrigins === "*" ? null : new Set(opts.corsOrigins);
  const isToken = (auth: string) => {
    const given = Buffer.from(auth);
    let ok = false;
    // Every token compared, in constant time each: which one matched (or how far) does not show in the timing.
    for (const t of tokens) ok = (t.length === given.length && timingSafeEqual(t, given)) || ok;
    return ok;
  };
  return (request, peer) => {
    const h = request.headers;
    if (origins !== null) {
      const origin = h.get("origin");
      if (origin !== null ? !origins.has(origin.toLowerCase()) : h.get("sec-fetch-site") === "cross-site") {
        throw new AppError("forbidden", `views from origin ${origin ?? "(cross-site)"} are not accepted here (CORS_ORIGINS)`);
      }
    }
    const auth = h.get("authorization");
    if (auth !== null) {
      if (!isToken(auth)) throw new AppError("unauthorized", "the bearer token is not an ingest token (INGEST_TOKEN)");
      return { kind: "trusted" };
    }
    return { kind: "public", address: opts.clientAddress(peer, h.get("x-forwarded-for")), userAgent: h.get("user-agent") ?? "" };
  };
}
