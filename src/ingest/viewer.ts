import { createHmac, randomBytes } from "node:crypto";

// Who a public view is from, without cookies: a keyed hash (HMAC-SHA256) of the client address and the
// User-Agent under a salt that changes every UTC day. The salt is derived from VIEWER_SECRET and the date, held
// in memory only, never logged or stored: once a day has passed, nobody (the operator included) can tell whose
// hash it was, nor link a viewer's days. What is kept is 8 bytes of the hash, in memory (repeats, rate limits)
// and folded into each product's unique-viewer sketch.

export interface Viewer {
  /** 64 bits of the hash, as a signed decimal (Postgres bigint; the unique-viewer sketch hashes it again). */
  readonly id: bigint;
  /** The same 64 bits as two 32-bit halves, for the in-memory tables. */
  readonly hi: number;
  readonly lo: number;
}

export type ViewerOf = (address: string, userAgent: string, nowMs?: number) => Viewer;

const DAY_MS = 86_400_000;

export function createViewerHasher(secret: string | undefined): { viewerOf: ViewerOf; ephemeral: boolean } {
  // Without a configured secret the salt is random per process: viewers are still told apart, but not across
  // processes or restarts (entry/api.ts says so at start).
  const key = secret ?? randomBytes(32).toString("hex");
  let day = -1;
  let salt: Buffer = Buffer.alloc(0);
  const viewerOf: ViewerOf = (address, userAgent, nowMs = Date.now()) => {
    const today = Math.floor(nowMs / DAY_MS);
    if (today !== day) {
      salt = createHmac("sha256", key).update(`viewer-salt:${today}`).digest();
      day = today;
    }
    // Bun's hasher: a fraction of node:crypto's cost a request (bench/RESULTS.md).
    const h = new Bun.CryptoHasher("sha256", salt).update(`${address.length}:${address}\n${userAgent}`).digest() as Buffer;
    return { id: h.readBigInt64BE(0), hi: h.readInt32BE(0), lo: h.readInt32BE(4) };
  };
  return { viewerOf, ephemeral: secret === undefined };
}
