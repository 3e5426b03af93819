import { type SQL, sql } from "drizzle-orm";
import { type Db, hasPgError } from "../db/client.ts";
import { FLUSH_CHANNEL, FLUSH_CHANNEL_1H, FLUSH_CHANNEL_UV } from "../db/flush-channel.ts";
import { MAX_TOP_LIMIT } from "../domain/product.ts";
import { viewCount } from "../domain/view.ts";
import { NO_MINUTE, NO_OFFSET, type Batch } from "./coalescer.ts";

/** A keyed attempt whose message carries no acceptance time (an API from before they did). */
const NO_TIME = -1;

const NOT_ALL_MOVED = "pv: not every partition's offset moved; moved: ";

/** The summed form's statement failed because a partition's offset did not move. */
const isNotAllMoved = (err: unknown) => hasPgError(err, (code, message) => code === "22P02" && message.includes(NOT_ALL_MOVED));

const DRY_RUN = "pv: dry run, undone; rows: ";

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

export interface FlushOptions {
  /** Products whose views this flush leaves out (set aside: see worker/refused.ts); the offsets move all the same. */
  skip?: (productId: string) => boolean;
  /** Runs the statement to its end, then fails it on purpose so nothing stays: isDryRunEnd() tells that error. */
  dryRun?: boolean;
  /**
   * The oldest minute the history keeps (epoch ms, db/history-partitions.ts oldestMinute): views accepted before it
   * are counted, but not in the history. Default: the start of yesterday (UTC).
   */
  historyFrom?: number;
}

/** A Postgres array literal of numbers or UUIDs (nothing in them needs quoting). */
const arrayLiteral = (values: readonly (number | string)[]) => `{${values.join(",")}}`;

export interface FlushResult {
  /** Products whose count was raised. */
  rowsUpdated: number;
  /** Distinct ids in the batch that matched no product (deleted or never created). */
  unknownProducts: number;
  /** Partitions whose stored offset moved under us (another worker owns them now): their views were not applied. */
  fenced: Array<{ partition: number; stored: number }>;
  views: number;
  /** Keyed requests not counted because their Idempotency-Key was counted within the window. */
  repeats: number;
  /** Of those, how many came with another body than the counted one (the first body won). */
  mismatched: number;
  /** Views of applied partitions left out by `skip`. */
  skipped: number;
  /** (product, minute) rows of the history written. */
  historyRows: number;
}

/** How long a counted Idempotency-Key keeps its repeats from being counted. */
export interface KeyOptions {
  windowMs: number;
}

export interface StoredOffset {
  /** next_offset (NO_OFFSET where none is stored). */
  next: number;
  /** The topic id the offset belongs to (null: none recorded yet). */
  topicId: string | null;
}

/** The stored position of each partition. */
export async function loadOffsets(db: Db, topic: string, partitions: readonly number[]): Promise<Map<number, StoredOffset>> {
  const rows = await db.execute<{ partition: number; next_offset: string; topic_id: string | null }>(sql`
    SELECT partition, next_offset, topic_id FROM view_offsets
    WHERE topic = ${topic} AND partition = ANY(${sql.param(partitions)}::int[])`);
  const out = new Map<number, StoredOffset>(partitions.map((p) => [p, { next: NO_OFFSET, topicId: null }]));
  for (const r of rows) out.set(Number(r.partition), { next: Number(r.next_offset), topicId: r.topic_id });
  return out;
}

/**
 * One statement, so one implicit transaction: a compare-and-set of each partition's stored offset (applied only
 * where it still equals the slice's base and belongs to the same topic id), the counts of exactly the
 * partitions that passed, and a NOTIFY for the API naming the changed products that can rank in the top-100
 * with their new counts and the flush's time (db/top-merge.ts says why that is enough; db/flush-channel.ts its form). Counts and offsets commit together or not at all.
 *
 * Why not BEGIN ... COMMIT through the driver: postgres.js 3.4.9 can leave a transaction's promise pending
 * forever when its connection drops mid-way (upstream issues 1186, 1215; seen here when Postgres restarts
 * under load), and a callback that survives its connection could go on outside the transaction. A single
 * statement has no client-side transaction state: it commits or it does not, and the caller may abandon it
 * after a deadline and send the same batch again, because a batch applied once can never pass the CAS again.
 * A concurrent flush of the same partition waits on the row lock, then re-reads the row (READ COMMITTED
 * re-check) and finds the offset moved: fenced, not applied.
 */
export async function flush(
  db: Db,
  topic: string,
  batch: Batch,
  topicId: string | null,
  keys: KeyOptions,
  opts: FlushOptions = {},
): Promise<FlushResult> {
  const skip = opts.skip ?? (() => false);
  // Views of each partition left out by `skip`, to take off what the flush reports as applied.
  const skippedIn = new Map<number, number>();
  const skipping = (partition: number, id: string, n: number) => {
    if (!skip(id)) return false;
    skippedIn.set(partition, (skippedIn.get(partition) ?? 0) + n);
    return true;
  };
  const parts: number[] = [];
  const bases: number[] = [];
  const nexts: number[] = [];
  for (const slice of batch.slices) {
    parts.push(slice.partition);
    bases.push(slice.base);
    nexts.push(slice.next);
  }
  // Keyed requests: stored in view_keys by the same statement that counts them, so a key is on record exactly
  // when its views are. A key met twice in this batch (a retry that arrived before the first was flushed) is
  // counted at its first place only: one statement cannot insert a key twice.
  const keyParts: number[] = [];
  const keyKeys: string[] = [];
  const keyFps: string[] = [];
  const keyAts: number[] = [];
  const kiKeys: string[] = [];
  const kiIds: string[] = [];
  const kiCounts: number[] = [];
  const seenKeys = new Map<string, string>();
  const localRepeats: Array<{ partition: number; views: number; mismatched: boolean }> = [];
  for (const slice of batch.slices) {
    for (const k of slice.keyed) {
      const views = opts.skip ? k.views.filter((e) => !skipping(slice.partition, e.product_id, e.count)) : k.views;
      const fp = seenKeys.get(k.key);
      if (fp !== undefined) {
        localRepeats.push({ partition: slice.partition, views: viewCount(views), mismatched: fp !== k.fp });
        continue;
      }
      seenKeys.set(k.key, k.fp);
      keyParts.push(slice.partition);
      keyKeys.push(k.key);
      keyFps.push(k.fp);
      keyAts.push(k.at ?? NO_TIME);
      for (const e of views) {
        kiKeys.push(k.key);
        kiIds.push(e.product_id);
        kiCounts.push(e.count);
      }
    }
  }
  // Public viewers, per partition: folded into each product's sketch where the partition's offset moved.
  const vParts: number[] = [];
  const vIds: string[] = [];
  const vHashes: string[] = [];
  for (const slice of batch.slices) {
    for (let i = 0; i < slice.viewers.length; i++) {
      if (skip(slice.viewerIds[i]!)) continue;
      vParts.push(slice.partition);
      vIds.push(slice.viewerIds[i]!);
      vHashes.push(slice.viewers[i]!);
    }
  }
  const history = historyItems(batch, skip);
  const historyFrom = new Date(opts.historyFrom ?? Math.floor(Date.now() / 86_400_000 - 1) * 86_400_000).toISOString();
  // Arrays go as Postgres array literals built by one join: postgres.js serialises a JS array element by element,
  // which for a large flush costs several times the CPU and holds the worker's event loop as long. Only numbers, UUIDs and hex digests are in them (decodeViewMessage checked them
  // against the schema), so nothing needs quoting.
  // Sums per product happen in SQL (GROUP BY): UPDATE ... FROM applies one joined row per target row, so a
  // product listed in two slices (its partition changed when partitions were added) must arrive summed.
  // Ids sorted: every worker locks product rows in the same order, so two flushes cannot deadlock.
  const statement = (items: SQL, assertAllMoved: SQL) =>
    db.execute<{
      applied: number[];
      rows: number;
      products: number;
      repeats: number;
      repeated_views: string;
      mismatched: number;
      history_rows: number;
    }>(sql`
    WITH s AS (
      SELECT * FROM unnest(${arrayLiteral(parts)}::int[], ${arrayLiteral(bases)}::bigint[], ${arrayLiteral(nexts)}::bigint[]) AS s(partition, base, next)
    ),
    cas AS (
      UPDATE view_offsets o SET next_offset = s.next, topic_id = coalesce(${topicId}::uuid, o.topic_id), updated_at = now()
      FROM s
      WHERE o.topic = ${topic} AND o.partition = s.partition AND o.next_offset = s.base
        AND (o.topic_id IS NULL OR ${topicId}::uuid IS NULL OR o.topic_id = ${topicId}::uuid)
      RETURNING o.partition
    ),
    ins AS (
      INSERT INTO view_offsets (topic, partition, next_offset, topic_id)
      SELECT ${topic}, s.partition, s.next, ${topicId}::uuid FROM s
      WHERE s.base = ${NO_OFFSET} AND NOT EXISTS (SELECT 1 FROM view_offsets o WHERE o.topic = ${topic} AND o.partition = s.partition)
      ON CONFLICT (topic, partition) DO NOTHING
      RETURNING partition
    ),
    moved AS (SELECT partition FROM cas UNION ALL SELECT partition FROM ins),
    k AS (
      SELECT k.partition, k.key, k.fp,
        CASE WHEN k.at = ${NO_TIME} THEN now() ELSE to_timestamp(k.at / 1000.0) END AS accepted_at
      FROM unnest(${arrayLiteral(keyParts)}::int[], ${arrayLiteral(keyKeys)}::uuid[], ${arrayLiteral(keyFps)}::uuid[], ${arrayLiteral(keyAts)}::bigint[])
        AS k(partition, key, fp, at)
      WHERE k.partition IN (SELECT partition FROM moved)
    ),
    -- A key is new when no row holds it, or one whose window ended by the time the API accepted this attempt
    -- (replaced: the window starts again). Measured between acceptances, not flushes: a worker that lags does not
    -- let a repeat sent inside the window count. Attempts from before acceptance times travelled: the flush's now().
    newkeys AS (
      INSERT INTO view_keys AS v (key, fingerprint, expires_at)
      SELECT k.key, k.fp, k.accepted_at + ${keys.windowMs}::float8 * interval '1 millisecond' FROM k ORDER BY k.key
      ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, expires_at = excluded.expires_at
        WHERE v.expires_at <= excluded.expires_at - ${keys.windowMs}::float8 * interval '1 millisecond'
      RETURNING v.key
    ),
    ki AS (
      SELECT * FROM unnest(${arrayLiteral(kiKeys)}::uuid[], ${arrayLiteral(kiIds)}::uuid[], ${arrayLiteral(kiCounts)}::bigint[]) AS ki(key, id, n)
      WHERE ki.key IN (SELECT key FROM k)
    ),
    totals AS (
      SELECT x.id, sum(x.n)::bigint AS n FROM (
        ${items}
        UNION ALL
        SELECT ki.id, ki.n FROM ki WHERE ki.key IN (SELECT key FROM newkeys)
      ) AS x
      GROUP BY x.id
      ORDER BY x.id
    ),
    -- Unique viewers: a union of HyperLogLog sketches, where a viewer met again changes nothing, so a keyed
    -- repeat's viewers may go in too. log2m 13, as sql/0004_unique_viewers.sql says.
    uv AS (
      SELECT u.id, hll_add_agg(hll_hash_bigint(u.h), 13) AS s
      FROM unnest(${arrayLiteral(vParts)}::int[], ${arrayLiteral(vIds)}::uuid[], ${arrayLiteral(vHashes)}::bigint[]) AS u(partition, id, h)
      WHERE u.partition IN (SELECT partition FROM moved)
      GROUP BY u.id
    ),
    rowsum AS (
      SELECT coalesce(t.id, uv.id) AS id, coalesce(t.n, 0) AS n, uv.s
      FROM totals t FULL JOIN uv ON uv.id = t.id
      ORDER BY 1
    ),
    upd AS (
      UPDATE products p SET view_count = p.view_count + t.n, updated_at = now(),
        viewers = CASE WHEN t.s IS NULL THEN p.viewers ELSE hll_union(coalesce(p.viewers, hll_empty(13)), t.s) END,
        unique_viewers = CASE WHEN t.s IS NULL THEN p.unique_viewers
          ELSE round(hll_cardinality(hll_union(coalesce(p.viewers, hll_empty(13)), t.s)))::bigint END
      FROM rowsum t WHERE p.id = t.id
      RETURNING p.id, p.view_count, p.unique_viewers
    ),
    -- History: the same views by the minute the API accepted them (never after this flush's minute: a clock ahead
    -- does not write the future), for products that exist, within what the history keeps (db/history.ts).
    hm AS (
      SELECT x.id, x.minute, sum(x.n)::bigint AS n FROM (
        SELECT m.id, CASE WHEN m.minute = ${NO_MINUTE} THEN date_trunc('minute', now())
            ELSE least(to_timestamp(m.minute * 60), date_trunc('minute', now())) END AS minute, m.n
        FROM unnest(${arrayLiteral(history.parts)}::int[], ${arrayLiteral(history.ids)}::uuid[], ${arrayLiteral(history.minutes)}::bigint[],
          ${arrayLiteral(history.counts)}::bigint[]) AS m(partition, id, minute, n)
        WHERE m.partition IN (SELECT partition FROM moved)
        UNION ALL
        SELECT ki.id, least(date_trunc('minute', k.accepted_at), date_trunc('minute', now())), ki.n
        FROM ki JOIN k ON k.key = ki.key WHERE ki.key IN (SELECT key FROM newkeys)
      ) AS x
      WHERE x.id IN (SELECT id FROM upd) AND x.minute >= ${historyFrom}::timestamptz
      GROUP BY 1, 2
    ),
    hist AS (
      INSERT INTO view_minutes AS v (product_id, minute, views) SELECT id, minute, n FROM hm ORDER BY 1, 2
      ON CONFLICT (product_id, minute) DO UPDATE SET views = v.views + excluded.views
      RETURNING 1
    ),
    -- Marks the minutes written, for the fold into hours (db/history.ts says why a seq).
    marks AS (
      INSERT INTO view_minute_marks AS vm (minute, seq) SELECT DISTINCT minute, 1 FROM hm ORDER BY 1
      ON CONFLICT (minute) DO UPDATE SET seq = vm.seq + 1
      RETURNING 1
    ),
    ranked AS (SELECT id, view_count FROM upd ORDER BY view_count DESC, id LIMIT ${MAX_TOP_LIMIT}),
    ranked_uv AS (
      SELECT id, unique_viewers FROM upd WHERE id IN (SELECT id FROM uv) ORDER BY unique_viewers DESC, id LIMIT ${MAX_TOP_LIMIT}
    )
    SELECT
      (SELECT coalesce(array_agg(partition), '{}') FROM moved) AS applied,
      (SELECT count(*) FROM upd)::int AS rows,
      (SELECT count(*) FROM rowsum)::int AS products,
      ((SELECT count(*) FROM k) - (SELECT count(*) FROM newkeys))::int AS repeats,
      (SELECT coalesce(sum(ki.n), 0) FROM ki WHERE ki.key NOT IN (SELECT key FROM newkeys))::bigint AS repeated_views,
      (SELECT count(*) FROM k JOIN view_keys v ON v.key = k.key
        WHERE k.key NOT IN (SELECT key FROM newkeys) AND v.fingerprint <> k.fp)::int AS mismatched,
      (SELECT pg_notify(${FLUSH_CHANNEL}, 'at=' || floor(extract(epoch FROM now()) * 1000)::bigint || ';'
          || coalesce((SELECT string_agg(id::text || ':' || view_count, ',') FROM ranked), ''))
        FROM (SELECT 1 FROM moved LIMIT 1) AS x) AS notified,
      (SELECT count(*) FROM hist)::int AS history_rows,
      -- The 1 h window's candidates: the products this flush added most views to inside it (flush-channel.ts).
      (SELECT pg_notify(${FLUSH_CHANNEL_1H}, 'at=' || floor(extract(epoch FROM now()) * 1000)::bigint || ';'
          || string_agg(id::text || ':' || n, ','))
        FROM (SELECT id, sum(n) AS n FROM hm WHERE minute >= date_trunc('minute', now()) - interval '59 minutes'
          GROUP BY id ORDER BY 2 DESC, 1 LIMIT ${MAX_TOP_LIMIT}) AS hot HAVING count(*) > 0) AS notified_1h,
      (SELECT pg_notify(${FLUSH_CHANNEL_UV}, 'at=' || floor(extract(epoch FROM now()) * 1000)::bigint || ';'
          || string_agg(id::text || ':' || unique_viewers, ','))
        FROM ranked_uv HAVING count(*) > 0) AS notified_uv
      ${assertAllMoved}`);
  // Per partition, the items count only where that partition's offset moved. Summed over the partitions first
  // (one item per product, not one per product and partition: with windows on partitions in turn a hot product is
  // in every slice), they may count only if every offset moved: the statement then fails unless it did, undoing
  // itself, and the batch goes again per partition. One statement either way (see above why no BEGIN).
  const perPartition = () => {
    const itemParts: number[] = [];
    const itemIds: string[] = [];
    const itemCounts: number[] = [];
    for (const slice of batch.slices) {
      for (const [id, n] of slice.counts) {
        if (skip(id)) continue;
        itemParts.push(slice.partition);
        itemIds.push(id);
        itemCounts.push(n);
      }
    }
    return sql`SELECT i.id, i.n
        FROM unnest(${arrayLiteral(itemParts)}::int[], ${arrayLiteral(itemIds)}::uuid[], ${arrayLiteral(itemCounts)}::bigint[]) AS i(partition, id, n)
        WHERE i.partition IN (SELECT partition FROM moved)`;
  };
  // Views left out of the unkeyed counts (the keyed ones were taken off above); no pass at all in a plain flush.
  if (opts.skip) for (const slice of batch.slices) for (const [id, n] of slice.counts) skipping(slice.partition, id, n);
  let row: Awaited<ReturnType<typeof statement>>[number] | undefined;
  if (opts.dryRun) {
    // After every other column, so the UPDATE has run whole: its errors come first.
    await statement(perPartition(), sql`, (SELECT (${DRY_RUN}::text || count(*))::boolean FROM upd) AS dry_run`);
    throw new Error("a dry run's statement did not fail"); // the cast above cannot succeed
  }
  const sums = new Map<string, number>();
  if (batch.slices.length > 1) {
    for (const slice of batch.slices) for (const [id, n] of slice.counts) if (!skip(id)) sums.set(id, (sums.get(id) ?? 0) + n);
  }
  // Each partition's sums are exact (coalescer.fits); across partitions only below 2^53, else Postgres adds them.
  const exact = [...sums.values()].every((n) => n <= Number.MAX_SAFE_INTEGER);
  if (batch.slices.length > 1 && exact) {
    const summed = sql`SELECT i.id, i.n FROM unnest(${arrayLiteral([...sums.keys()])}::uuid[], ${arrayLiteral([...sums.values()])}::bigint[]) AS i(id, n)`;
    // A text that is no boolean: the cast fails the statement, and its message says why.
    const assert = sql`, (SELECT CASE WHEN count(*) = ${batch.slices.length} THEN true
        ELSE (${NOT_ALL_MOVED}::text || count(*))::boolean END FROM moved) AS all_moved`;
    try {
      [row] = await statement(summed, assert);
    } catch (err) {
      if (!isNotAllMoved(err)) throw err;
    }
  }
  if (!row) [row] = await statement(perPartition(), sql``);
  const applied = new Set((row!.applied ?? []).map(Number));
  const rowsUpdated = Number(row!.rows);
  let views = 0;
  const fencedParts: number[] = [];
  let skipped = 0;
  for (const slice of batch.slices) {
    if (applied.has(slice.partition)) {
      views += slice.views - (skippedIn.get(slice.partition) ?? 0);
      skipped += skippedIn.get(slice.partition) ?? 0;
    } else fencedParts.push(slice.partition);
  }
  // Keyed requests of applied slices that were not counted: repeats of a key already stored, or met twice here.
  views -= Number(row!.repeated_views);
  let repeats = Number(row!.repeats);
  let mismatched = Number(row!.mismatched);
  for (const r of localRepeats) {
    if (!applied.has(r.partition)) continue;
    views -= r.views;
    repeats++;
    if (r.mismatched) mismatched++;
  }
  const fenced: FlushResult["fenced"] = [];
  if (fencedParts.length > 0) {
    // Read after the statement: the offsets as the worker that moved them committed them.
    const now = await loadOffsets(db, topic, fencedParts);
    for (const p of fencedParts) fenced.push({ partition: p, stored: now.get(p)?.next ?? NO_OFFSET });
  }
  const products = Number(row!.products);
  return {
    rowsUpdated,
    unknownProducts: products - rowsUpdated,
    fenced,
    views,
    repeats,
    mismatched,
    skipped,
    historyRows: Number(row!.history_rows),
  };
}

/** Unkeyed views per (partition, product, minute), as array columns; keyed ones take their own `at` in SQL. */
function historyItems(batch: Batch, skip: (id: string) => boolean) {
  const parts: number[] = [];
  const ids: string[] = [];
  const minutes: number[] = [];
  const counts: number[] = [];
  for (const slice of batch.slices) {
    for (const [minute, byId] of slice.minutes) {
      for (const [id, n] of byId) {
        if (skip(id)) continue;
        parts.push(slice.partition);
        ids.push(id);
        minutes.push(minute);
        counts.push(n);
      }
    }
  }
  return { parts, ids, minutes, counts };
}

/**
 * Deletes up to `limit` keys whose window ended at least `graceMs` ago; returns how many. An expired key counts as
 * absent to a flush, but a repeat the API accepted inside the window may still be on its way (a lagging worker):
 * kept `graceMs` longer, such a repeat is still recognised. This only bounds the table's size. The condition is on the deleted row itself, not only in the
 * subquery: a row a flush renewed while the DELETE waited on its lock is re-checked against its new expiry
 * (READ COMMITTED re-evaluates the target's own conditions, not a subquery's result) and stays.
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

/** A few of the ids that match no product, for a rate-limited log line. */
export async function sampleUnknown(db: Db, ids: readonly string[], limit = 5): Promise<string[]> {
  const rows = await db.execute<{ id: string }>(sql`
    SELECT v.id::text AS id FROM unnest(${sql.param(ids)}::uuid[]) AS v(id)
    WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = v.id) LIMIT ${limit}`);
  return rows.map((r) => r.id);
}

/**
 * Re-bases stored offsets (operator action after a log reset or truncation): each partition's next_offset is
 * set to the given value, under the same row lock a flush takes, so a worker still holding a slice built on
 * the old offset is fenced instead of applying it.
 */
export async function rebaseOffsets(db: Db, topic: string, next: ReadonlyMap<number, number>, topicId: string | null): Promise<void> {
  if (next.size === 0) return;
  const partitions = [...next.keys()];
  // One UPDATE: it takes the rows' locks itself, and its commit moves the offsets a zombie slice's CAS needs.
  await db.execute(sql`
    UPDATE view_offsets o SET next_offset = v.next, topic_id = ${topicId}::uuid, updated_at = now()
    FROM unnest(${sql.param(partitions)}::int[], ${sql.param(partitions.map((p) => next.get(p)!))}::bigint[]) AS v(partition, next)
    WHERE o.topic = ${topic} AND o.partition = v.partition`);
}
