import { type SQL, sql } from "drizzle-orm";
import { type Db, hasPgError } from "./client.ts";
import { FLUSH_CHANNEL, FLUSH_CHANNEL_1H, FLUSH_CHANNEL_UV } from "./flush-channel.ts";
import { MAX_TOP_LIMIT } from "../domain/product.ts";
import { NO_OFFSET } from "./offsets.ts";

// The worker's flush as one statement (worker/writer.ts builds its input and reads its result): a compare-and-set of
// each partition's stored offset, the counts of exactly the partitions that passed, their Idempotency-Keys, unique
// viewers and history minutes, and the NOTIFYs the APIs rank from. One statement, so one implicit transaction:
// everything commits together or not at all.
//
// Why not BEGIN ... COMMIT through the driver: postgres.js can leave a transaction's promise pending forever when its
// connection drops mid-way (upstream issues 1186, 1215), and a callback that survives its connection could go on
// outside the transaction. A single statement has no client-side transaction state: it commits or it does not, and
// the caller may abandon it after a deadline and send the same batch again, because a batch applied once can never
// pass the CAS again. A concurrent flush of the same partition waits on the row lock, then re-reads the row (READ
// COMMITTED re-check) and finds the offset moved: fenced, not applied.

/** A view or keyed attempt whose message carries no acceptance time: counted at the flush's now(). */
export const NO_TIME = -1;
/** The same for a history minute (epoch minutes). */
export const NO_MINUTE = -1;

const NOT_ALL_MOVED = "pv: not every partition's offset moved; moved: ";
const DRY_RUN = "pv: dry run, undone; rows: ";

/** The summed form's statement failed because a partition's offset did not move. */
export const isNotAllMoved = (err: unknown) => hasPgError(err, (code, message) => code === "22P02" && message.includes(NOT_ALL_MOVED));

/** A dry run's statement reached its end (and undid itself): nothing in it was refused. */
export const isDryRunEnd = (err: unknown) => hasPgError(err, (code, message) => code === "22P02" && message.includes(DRY_RUN));

/**
 * An error of the data, not of the connection or the server's state (SQLSTATE classes 22 and 23: a value out of
 * range, a constraint): the same statement fails the same way however often it is sent.
 */
export const isDataError = (err: unknown) =>
  hasPgError(
    err,
    (code, message) => (code.startsWith("22") || code.startsWith("23")) && !message.includes(NOT_ALL_MOVED) && !message.includes(DRY_RUN),
  );

/** What one flush writes, as parallel arrays (one Postgres array each). */
export interface FlushRows {
  /** Per partition slice: where it started and where it ends. */
  offsets: { parts: number[]; bases: number[]; nexts: number[] };
  /** Keyed requests, their first place in the batch only: partition, key digest, body digest, acceptance time (ms). */
  keys: { parts: number[]; keys: string[]; fps: string[]; ats: number[] };
  /** The keyed requests' views: key, product, views. */
  keyItems: { keys: string[]; ids: string[]; counts: number[] };
  /** Public viewers, per partition: product and viewer hash. */
  viewers: { parts: number[]; ids: string[]; hashes: string[] };
  /** Unkeyed views per partition, product and acceptance minute (epoch minutes or NO_MINUTE). */
  minutes: { parts: number[]; ids: string[]; minutes: number[]; counts: number[] };
  /** Unkeyed views: per partition, or summed over partitions (then they count only if every offset moved). */
  items: { parts: number[]; ids: string[]; counts: number[] } | { summed: { ids: string[]; counts: number[] }; slices: number };
}

export interface FlushRow {
  applied: number[];
  rows: number;
  products: number;
  repeats: number;
  repeated_views: string;
  mismatched: number;
  history_rows: number;
}

export interface FlushSettings {
  topic: string;
  topicId: string | null;
  /** How long a counted Idempotency-Key keeps its repeats from being counted. */
  keyWindowMs: number;
  /** The oldest minute the history keeps (ISO time): older views are counted, but not in the history. */
  historyFrom: string;
}

/** A Postgres array literal of numbers or UUIDs (nothing in them needs quoting). */
const literal = (values: readonly (number | string)[]) => `{${values.join(",")}}`;

/**
 * Runs the flush. `dryRun`: to its end, then fails on purpose so nothing stays (isDryRunEnd() tells that error).
 * With summed items the statement fails unless every offset moved (isNotAllMoved()); the caller then sends the
 * per-partition form.
 */
export async function runFlush(db: Db, s: FlushSettings, r: FlushRows, dryRun = false): Promise<FlushRow> {
  const tail = dryRun
    ? // After every other column, so the UPDATE has run whole: its errors come first.
      sql`, (SELECT (${DRY_RUN}::text || count(*))::boolean FROM upd) AS dry_run`
    : "summed" in r.items
      ? // A text that is no boolean: the cast fails the statement, and its message says why.
        sql`, (SELECT CASE WHEN count(*) = ${r.items.slices} THEN true ELSE (${NOT_ALL_MOVED}::text || count(*))::boolean END FROM moved) AS all_moved`
      : sql``;
  const [row] = await db.execute<FlushRow & Record<string, unknown>>(sql`
    WITH ${offsetsCte(s, r)},
    ${keysCte(s, r)},
    ${totalsCte(r)},
    ${viewersCte(r)},
    ${productsCte()},
    ${historyCte(s, r)}
    SELECT ${resultColumns()}, ${noticeColumns()} ${tail}`);
  return row!;
}

/** s: the slices; cas: offsets that moved from the slice's base; ins: first offsets; moved: the partitions that count. */
function offsetsCte(s: FlushSettings, r: FlushRows): SQL {
  const { parts, bases, nexts } = r.offsets;
  return sql`s AS (
      SELECT * FROM unnest(${literal(parts)}::int[], ${literal(bases)}::bigint[], ${literal(nexts)}::bigint[]) AS s(partition, base, next)
    ),
    cas AS (
      UPDATE view_offsets o SET next_offset = s.next, topic_id = coalesce(${s.topicId}::uuid, o.topic_id), updated_at = now()
      FROM s
      WHERE o.topic = ${s.topic} AND o.partition = s.partition AND o.next_offset = s.base
        AND (o.topic_id IS NULL OR ${s.topicId}::uuid IS NULL OR o.topic_id = ${s.topicId}::uuid)
      RETURNING o.partition
    ),
    ins AS (
      INSERT INTO view_offsets (topic, partition, next_offset, topic_id)
      SELECT ${s.topic}, s.partition, s.next, ${s.topicId}::uuid FROM s
      WHERE s.base = ${NO_OFFSET} AND NOT EXISTS (SELECT 1 FROM view_offsets o WHERE o.topic = ${s.topic} AND o.partition = s.partition)
      ON CONFLICT (topic, partition) DO NOTHING
      RETURNING partition
    ),
    moved AS (SELECT partition FROM cas UNION ALL SELECT partition FROM ins)`;
}

/**
 * k: keyed attempts of moved partitions; newkeys: those whose key is new, stored with the window's end; ki: their
 * views. A key is new when no row holds it, or one whose window ended by the time the API accepted this attempt
 * (replaced: the window starts again). Measured between acceptances, not flushes: a worker that lags does not let a
 * repeat sent inside the window count.
 */
function keysCte(s: FlushSettings, r: FlushRows): SQL {
  const { parts, keys, fps, ats } = r.keys;
  const window = sql`${s.keyWindowMs}::float8 * interval '1 millisecond'`;
  return sql`k AS (
      SELECT k.partition, k.key, k.fp,
        CASE WHEN k.at = ${NO_TIME} THEN now() ELSE to_timestamp(k.at / 1000.0) END AS accepted_at
      FROM unnest(${literal(parts)}::int[], ${literal(keys)}::uuid[], ${literal(fps)}::uuid[], ${literal(ats)}::bigint[])
        AS k(partition, key, fp, at)
      WHERE k.partition IN (SELECT partition FROM moved)
    ),
    newkeys AS (
      INSERT INTO view_keys AS v (key, fingerprint, expires_at)
      SELECT k.key, k.fp, k.accepted_at + ${window} FROM k ORDER BY k.key
      ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, expires_at = excluded.expires_at
        WHERE v.expires_at <= excluded.expires_at - ${window}
      RETURNING v.key
    ),
    ki AS (
      SELECT * FROM unnest(${literal(r.keyItems.keys)}::uuid[], ${literal(r.keyItems.ids)}::uuid[], ${literal(r.keyItems.counts)}::bigint[])
        AS ki(key, id, n)
      WHERE ki.key IN (SELECT key FROM k)
    )`;
}

/**
 * totals: views per product, unkeyed and new keys' together. Sums happen here (GROUP BY): UPDATE ... FROM applies one
 * joined row per target row, so a product listed in two slices must arrive summed. Ids sorted: every worker locks
 * product rows in the same order, so two flushes cannot deadlock.
 */
function totalsCte(r: FlushRows): SQL {
  const items =
    "summed" in r.items
      ? sql`SELECT i.id, i.n FROM unnest(${literal(r.items.summed.ids)}::uuid[], ${literal(r.items.summed.counts)}::bigint[]) AS i(id, n)`
      : sql`SELECT i.id, i.n
          FROM unnest(${literal(r.items.parts)}::int[], ${literal(r.items.ids)}::uuid[], ${literal(r.items.counts)}::bigint[]) AS i(partition, id, n)
          WHERE i.partition IN (SELECT partition FROM moved)`;
  return sql`totals AS (
      SELECT x.id, sum(x.n)::bigint AS n FROM (
        ${items}
        UNION ALL
        SELECT ki.id, ki.n FROM ki WHERE ki.key IN (SELECT key FROM newkeys)
      ) AS x
      GROUP BY x.id
      ORDER BY x.id
    )`;
}

/**
 * uv: unique viewers, a union of HyperLogLog sketches, where a viewer met again changes nothing, so a keyed repeat's
 * viewers may go in too (log2m 13, as sql/0004_unique_viewers.sql says). rowsum: what each product row gets.
 */
function viewersCte(r: FlushRows): SQL {
  const { parts, ids, hashes } = r.viewers;
  return sql`uv AS (
      SELECT u.id, hll_add_agg(hll_hash_bigint(u.h), 13) AS s
      FROM unnest(${literal(parts)}::int[], ${literal(ids)}::uuid[], ${literal(hashes)}::bigint[]) AS u(partition, id, h)
      WHERE u.partition IN (SELECT partition FROM moved)
      GROUP BY u.id
    ),
    rowsum AS (
      SELECT coalesce(t.id, uv.id) AS id, coalesce(t.n, 0) AS n, uv.s
      FROM totals t FULL JOIN uv ON uv.id = t.id
      ORDER BY 1
    )`;
}

/** upd: the product rows; ranked, ranked_uv: the changed products that can rank, for the NOTIFYs (ranking/top-merge.ts). */
function productsCte(): SQL {
  return sql`upd AS (
      UPDATE products p SET view_count = p.view_count + t.n, updated_at = now(),
        viewers = CASE WHEN t.s IS NULL THEN p.viewers ELSE hll_union(coalesce(p.viewers, hll_empty(13)), t.s) END,
        unique_viewers = CASE WHEN t.s IS NULL THEN p.unique_viewers
          ELSE round(hll_cardinality(hll_union(coalesce(p.viewers, hll_empty(13)), t.s)))::bigint END
      FROM rowsum t WHERE p.id = t.id
      RETURNING p.id, p.view_count, p.unique_viewers
    ),
    ranked AS (SELECT id, view_count FROM upd ORDER BY view_count DESC, id LIMIT ${MAX_TOP_LIMIT}),
    ranked_uv AS (
      SELECT id, unique_viewers FROM upd WHERE id IN (SELECT id FROM uv) ORDER BY unique_viewers DESC, id LIMIT ${MAX_TOP_LIMIT}
    )`;
}

/**
 * hm: the same views by the minute the API accepted them (never after this flush's minute: a clock ahead does not
 * write the future), for products that exist, within what the history keeps; hist: added to view_minutes; marks: the
 * minutes written, for the fold into hours (db/history.ts says why a seq).
 */
function historyCte(s: FlushSettings, r: FlushRows): SQL {
  const m = r.minutes;
  return sql`hm AS (
      SELECT x.id, x.minute, sum(x.n)::bigint AS n FROM (
        SELECT m.id, CASE WHEN m.minute = ${NO_MINUTE} THEN date_trunc('minute', now())
            ELSE least(to_timestamp(m.minute * 60), date_trunc('minute', now())) END AS minute, m.n
        FROM unnest(${literal(m.parts)}::int[], ${literal(m.ids)}::uuid[], ${literal(m.minutes)}::bigint[], ${literal(m.counts)}::bigint[])
          AS m(partition, id, minute, n)
        WHERE m.partition IN (SELECT partition FROM moved)
        UNION ALL
        SELECT ki.id, least(date_trunc('minute', k.accepted_at), date_trunc('minute', now())), ki.n
        FROM ki JOIN k ON k.key = ki.key WHERE ki.key IN (SELECT key FROM newkeys)
      ) AS x
      WHERE x.id IN (SELECT id FROM upd) AND x.minute >= ${s.historyFrom}::timestamptz
      GROUP BY 1, 2
    ),
    hist AS (
      INSERT INTO view_minutes AS v (product_id, minute, views) SELECT id, minute, n FROM hm ORDER BY 1, 2
      ON CONFLICT (product_id, minute) DO UPDATE SET views = v.views + excluded.views
      RETURNING 1
    ),
    marks AS (
      INSERT INTO view_minute_marks AS vm (minute, seq) SELECT DISTINCT minute, 1 FROM hm ORDER BY 1
      ON CONFLICT (minute) DO UPDATE SET seq = vm.seq + 1
      RETURNING 1
    )`;
}

function resultColumns(): SQL {
  return sql`(SELECT coalesce(array_agg(partition), '{}') FROM moved) AS applied,
      (SELECT count(*) FROM upd)::int AS rows,
      (SELECT count(*) FROM rowsum)::int AS products,
      ((SELECT count(*) FROM k) - (SELECT count(*) FROM newkeys))::int AS repeats,
      (SELECT coalesce(sum(ki.n), 0) FROM ki WHERE ki.key NOT IN (SELECT key FROM newkeys))::bigint AS repeated_views,
      (SELECT count(*) FROM k JOIN view_keys v ON v.key = k.key
        WHERE k.key NOT IN (SELECT key FROM newkeys) AND v.fingerprint <> k.fp)::int AS mismatched,
      (SELECT count(*) FROM hist)::int AS history_rows`;
}

/** The NOTIFYs (db/flush-channel.ts), sent only if an offset moved: they arrive exactly at commit. */
function noticeColumns(): SQL {
  const at = sql`'at=' || floor(extract(epoch FROM now()) * 1000)::bigint || ';'`;
  return sql`(SELECT pg_notify(${FLUSH_CHANNEL}, ${at} || coalesce((SELECT string_agg(id::text || ':' || view_count, ',') FROM ranked), ''))
        FROM (SELECT 1 FROM moved LIMIT 1) AS x) AS notified,
      (SELECT pg_notify(${FLUSH_CHANNEL_1H}, ${at} || string_agg(id::text || ':' || n, ','))
        FROM (SELECT id, sum(n) AS n FROM hm WHERE minute >= date_trunc('minute', now()) - interval '59 minutes'
          GROUP BY id ORDER BY 2 DESC, 1 LIMIT ${MAX_TOP_LIMIT}) AS hot HAVING count(*) > 0) AS notified_1h,
      (SELECT pg_notify(${FLUSH_CHANNEL_UV}, ${at} || string_agg(id::text || ':' || unique_viewers, ','))
        FROM ranked_uv HAVING count(*) > 0) AS notified_uv`;
}
