import { sql } from "drizzle-orm";
import { bigint, check, customType, integer, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";

/** postgresql-hll's sketch type; only SQL in the worker's flush reads or writes it (never selected into JS). */
const hll = customType<{ data: never }>({ dataType: () => "hll" });

// Source of truth for the tables; sql/ holds the migrations that create them, and
// test/integration/migrations.test.ts checks that both agree column by column.

/**
 * Storage options the migrations give each table (drizzle's table builder has no place for them); the
 * migrations test checks Postgres has exactly these. fillfactor: room on each page for HOT count updates.
 */
export const STORAGE_OPTIONS: Record<string, string[] | null> = { products: ["fillfactor=70"], view_offsets: null, view_keys: null };

export const products = pgTable(
  "products",
  {
    id: uuid("id").primaryKey().default(sql`gen_random_uuid()`),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    viewCount: bigint("view_count", { mode: "number" }).notNull().default(0),
    /** Distinct public viewers (viewer-days: the viewer hash changes daily), estimated from `viewers`. */
    uniqueViewers: bigint("unique_viewers", { mode: "number" }).notNull().default(0),
    /** HyperLogLog sketch of the viewers (sql/0004_unique_viewers.sql); null until the first public view. */
    viewers: hll("viewers"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [check("products_view_count_check", sql`${t.viewCount} >= 0`)],
);

/**
 * The worker's position per topic partition, written in the same transaction as the counts it covers:
 * counts and offsets move together, so a replayed message is recognised and skipped (exactly-once effect).
 */
export const viewOffsets = pgTable(
  "view_offsets",
  {
    topic: text("topic").notNull(),
    partition: integer("partition").notNull(),
    nextOffset: bigint("next_offset", { mode: "number" }).notNull(),
    topicId: uuid("topic_id"),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.topic, t.partition] })],
);

/**
 * Idempotency keys counted within their window (digests: MD5 of the key, MD5 of the request's views). Written by
 * the flush that counts the keyed request, so a repeat of it is recognised by any worker, after any crash.
 */
export const viewKeys = pgTable("view_keys", {
  key: uuid("key").primaryKey(),
  fingerprint: uuid("fingerprint").notNull(),
  expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
});
