import { sql } from "drizzle-orm";
import type { Db } from "./client.ts";
import { BUCKET_MS, type Bucket, type Window, windowStart } from "../domain/history.ts";

// Reading and folding the views history (sql/0005_view_history.sql). The flush writes minutes (db/flush.ts);
// foldMinutes() moves what they gained into hours. A read sums hours plus the minutes not folded yet, which are
// exactly the marked minutes' rows with views > folded (the fold clears a mark only with its minute folded), so it
// is exact whenever the fold last ran.

export interface Folded {
  minutes: number;
  rows: number;
  views: number;
}

/**
 * Folds up to `limit` marked minutes into view_hours, in one statement. FOR UPDATE locks each minute row and re-reads
 * it after a concurrent flush's commit, so what is added to the hour is exactly what `folded` rises by; a mark is
 * deleted only if no flush raised its seq meanwhile (a row that flush inserted is not in this statement's snapshot).
 */
export async function foldMinutes(db: Db, limit = 60): Promise<Folded> {
  const [row] = await db.execute<{ minutes: number; rows: number; views: string }>(sql`
    WITH mk AS (
      -- Closed minutes only: the current one is still being written by every flush, whose row locks it would take.
      SELECT minute, seq FROM view_minute_marks WHERE minute < date_trunc('minute', now()) ORDER BY minute LIMIT ${limit}
    ),
    c AS (
      SELECT m.product_id, m.minute, m.views - m.folded AS d FROM view_minutes m
      WHERE m.minute IN (SELECT minute FROM mk) AND m.views > m.folded
      ORDER BY m.product_id, m.minute
      FOR UPDATE
    ),
    f AS (
      UPDATE view_minutes m SET folded = m.folded + c.d FROM c
      WHERE m.product_id = c.product_id AND m.minute = c.minute
      RETURNING 1
    ),
    h AS (
      INSERT INTO view_hours AS v (product_id, hour, views)
      SELECT c.product_id, date_trunc('hour', c.minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', sum(c.d) FROM c
      GROUP BY 1, 2 ORDER BY 1, 2
      ON CONFLICT (product_id, hour) DO UPDATE SET views = v.views + excluded.views
      RETURNING 1
    ),
    gone AS (DELETE FROM view_minute_marks k USING mk WHERE k.minute = mk.minute AND k.seq = mk.seq RETURNING 1)
    SELECT (SELECT count(*) FROM gone)::int AS minutes, (SELECT count(*) FROM f)::int AS rows,
      (SELECT coalesce(sum(d), 0) FROM c)::text AS views, (SELECT count(*) FROM h) AS hours`);
  return { minutes: Number(row!.minutes), rows: Number(row!.rows), views: Number(row!.views) };
}

/** Views per product in `ids`, or the top `limit` when `ids` is null, over `window` as it stands at `nowMs`. */
export async function windowViews(
  db: Db,
  window: Window,
  nowMs: number,
  opts: { limit: number } | { ids: readonly string[] },
): Promise<Array<{ id: string; views: number }>> {
  const from = new Date(windowStart(window, nowMs)).toISOString();
  const to = new Date(nowMs).toISOString();
  const only = "ids" in opts ? sql`AND product_id = ANY(${sql.param(opts.ids)}::uuid[])` : sql``;
  const source =
    window === "1h"
      ? sql`SELECT product_id, views FROM view_minutes WHERE minute >= ${from}::timestamptz AND minute <= ${to}::timestamptz ${only}`
      : sql`SELECT product_id, views FROM view_hours WHERE hour >= ${from}::timestamptz AND hour <= ${to}::timestamptz ${only}
          UNION ALL
          SELECT product_id, views - folded FROM view_minutes
          WHERE minute IN (SELECT minute FROM view_minute_marks WHERE minute >= ${from}::timestamptz AND minute <= ${to}::timestamptz)
            AND views > folded ${only}`;
  const limit = "limit" in opts ? sql`LIMIT ${opts.limit}` : sql``;
  const rows = await db.execute<{ id: string; views: string }>(sql`
    SELECT s.product_id AS id, sum(s.views)::text AS views FROM (${source}) AS s
    GROUP BY s.product_id HAVING sum(s.views) > 0 ORDER BY sum(s.views) DESC, s.product_id ${limit}`);
  return rows.map((r) => ({ id: r.id, views: Number(r.views) }));
}

/** A product's views per bucket from `from` to `to` (bucket starts, epoch ms): only buckets with views. */
export async function seriesOf(db: Db, id: string, bucket: Bucket, from: number, to: number): Promise<Map<number, number>> {
  const f = new Date(from).toISOString();
  const t = new Date(to + BUCKET_MS[bucket]).toISOString();
  const rows =
    bucket === "minute"
      ? await db.execute<{ t: string; views: string }>(sql`
          SELECT (extract(epoch FROM minute) * 1000)::bigint::text AS t, views::text AS views FROM view_minutes
          WHERE product_id = ${id}::uuid AND minute >= ${f}::timestamptz AND minute < ${t}::timestamptz`)
      : await db.execute<{ t: string; views: string }>(sql`
          SELECT (extract(epoch FROM date_trunc(${bucket}, s.at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') * 1000)::bigint::text AS t,
            sum(s.views)::text AS views
          FROM (
            SELECT hour AS at, views FROM view_hours WHERE product_id = ${id}::uuid AND hour >= ${f}::timestamptz AND hour < ${t}::timestamptz
            UNION ALL
            SELECT minute, views - folded FROM view_minutes
            WHERE product_id = ${id}::uuid AND minute >= ${f}::timestamptz AND minute < ${t}::timestamptz AND views > folded
          ) AS s GROUP BY 1`);
  return new Map(rows.map((r) => [Number(r.t), Number(r.views)]));
}
