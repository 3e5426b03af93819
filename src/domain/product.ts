import { Type, type Static } from "@sinclair/typebox";
import { IGNORES_UNKNOWN, Uuid } from "./view.ts";

export const MAX_TOP_LIMIT = 100;

/** What /top ranks by: all-time views, or distinct public viewers (only products that have any are listed). */
export const RANKS = ["view_count", "unique_viewers"] as const;
export type Rank = (typeof RANKS)[number];

/** `by` of GET /top: absent -> view_count; otherwise one of RANKS, given once. */
export function parseRank(raw: unknown): Rank | string {
  if (raw === undefined) return "view_count";
  if (typeof raw !== "string" || !(RANKS as readonly string[]).includes(raw)) return `by must be one of ${RANKS.join(", ")}`;
  return raw as Rank;
}
export const DEFAULT_TOP_LIMIT = 10;

export const Product = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    description: Type.String(),
    view_count: Type.Integer({ minimum: 0 }),
    unique_viewers: Type.Integer({
      minimum: 0,
      description:
        "Distinct public viewers, estimated (HyperLogLog, standard error 1.15 %; exact while small). A viewer is a hash that changes daily, so this counts viewer-days",
    }),
    created_at: Type.String({ format: "date-time" }),
    updated_at: Type.String({ format: "date-time" }),
  },
  { description: "A product and its view count" },
);
export type Product = Static<typeof Product>;

// Names and descriptions are shown on pages and in terminals: no control characters (Postgres text cannot hold NUL
// anyway) and no bidirectional overrides or isolates, which make a name read as something else. Line breaks and
// tabs are fine in a description.
const PLAIN = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069]*$";
const PLAIN_TEXT = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069]*$";

export const CreateProductRequest = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, pattern: PLAIN }),
    description: Type.Optional(Type.String({ maxLength: 2000, default: "", pattern: PLAIN_TEXT })),
    view_count: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000_000, default: 0 })),
  },
  { description: "Other properties are ignored", ...IGNORES_UNKNOWN },
);
export type CreateProductRequest = Static<typeof CreateProductRequest>;

export interface NewProduct {
  name: string;
  description: string;
  viewCount: number;
}

/** Applies the defaults; the name is stored as sent (1..200 characters, as the schema says). */
export function normaliseNewProduct(req: CreateProductRequest): NewProduct {
  return { name: req.name, description: req.description ?? "", viewCount: req.view_count ?? 0 };
}

/**
 * `limit` of GET /top: absent -> default; otherwise exactly one decimal integer 1..100.
 * "1e3", "-1", "0", "abc", "10.0" and repeated parameters are all rejected.
 */
export function parseTopLimit(raw: unknown): number | string {
  if (raw === undefined) return DEFAULT_TOP_LIMIT;
  if (typeof raw !== "string") return "limit must be given once";
  if (!/^\d{1,3}$/.test(raw)) return `limit must be an integer between 1 and ${MAX_TOP_LIMIT}`;
  const n = Number(raw);
  if (n < 1 || n > MAX_TOP_LIMIT) return `limit must be an integer between 1 and ${MAX_TOP_LIMIT}`;
  return n;
}
