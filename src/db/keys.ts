import { sql } from "drizzle-orm";
import type { Db } from "./client.ts";

// Idempotency-Keys the worker counted (view_keys; the flush statement writes them, db/flush.ts).

/**
 * Deletes up to `limit` keys whose window ended at least `graceMs` ago; returns how many. An expired key counts as
 * absent to a flush, but a repeat the API accepted inside the window may still be on its way (a lagging worker):
 * kept `graceMs` longer, such a repeat is still recognised. This only bounds the table's size. The condition is on
 * the deleted row itself, not only in the subquery: a row a flush renewed while the DELETE waited on its lock is
 * re-checked against its new expiry (READ COMMITTED re-evaluates the target's own conditions) and stays.
 */
export async function expireKeys(db: Db, limit: number, graceMs = 0): Promise<number> {
  const rows = await db.execute<{ n: number }>(sql`
    WITH cutoff AS (SELECT now() - ${graceMs}::float8 * interval '1 millisecond' AS t),
    gone AS (
      DELETE FROM view_keys v USING (SELECT key FROM view_keys WHERE expires_at <= (SELECT t FROM cutoff) LIMIT ${limit}) e
      WHERE v.key = e.key AND v.expires_at <= (SELECT t FROM cutoff) RETURNING 1
    )
    SELECT count(*)::int AS n FROM gone`);
  return Number(rows[0]!.n);
}
