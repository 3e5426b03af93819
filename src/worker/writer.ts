import { sql } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { FLUSH_CHANNEL } from "../db/top.ts";
import { NO_OFFSET, type Batch } from "./coalescer.ts";

export interface FlushResult {
  /** Products whose count was raised. */
  rowsUpdated: number;
  /** Distinct ids in the batch that matched no product (deleted or never created). */
  unknownProducts: number;
  /** Partitions whose stored offset moved under us (another worker owns them now): their views were not applied. */
  fenced: Array<{ partition: number; stored: number }>;
  views: number;
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
 * One transaction: fence the partitions (row locks on their offsets), add the counts with a single
 * UPDATE ... FROM unnest(), store the new offsets, NOTIFY the API. Counts and offsets commit together or not
 * at all, so a crash at any point leaves Postgres either before or after the whole batch.
 */
export async function flush(db: Db, topic: string, batch: Batch, topicId: string | null): Promise<FlushResult> {
  return db.transaction(async (tx) => {
    const partitions = batch.slices.map((s) => s.partition);
    // Rows must exist to be locked; a concurrent first insert waits here and then wins or loses cleanly.
    await tx.execute(sql`
      INSERT INTO view_offsets (topic, partition, next_offset)
      SELECT ${topic}, p, ${NO_OFFSET} FROM unnest(${sql.param(partitions)}::int[]) AS p
      ON CONFLICT (topic, partition) DO NOTHING`);
    const locked = await tx.execute<{ partition: number; next_offset: string; topic_id: string | null }>(sql`
      SELECT partition, next_offset, topic_id FROM view_offsets
      WHERE topic = ${topic} AND partition = ANY(${sql.param(partitions)}::int[])
      ORDER BY partition FOR UPDATE`);
    const stored = new Map(locked.map((r) => [Number(r.partition), Number(r.next_offset)]));
    const ids = new Map(locked.map((r) => [Number(r.partition), r.topic_id]));

    const fenced: FlushResult["fenced"] = [];
    // One entry per product: UPDATE ... FROM applies only one joined row per target row, so an id listed
    // twice (a product whose partition changed when partitions were added) would lose views.
    const totals = new Map<string, number>();
    const offsets: Array<[number, number]> = [];
    let views = 0;
    for (const slice of batch.slices) {
      const current = stored.get(slice.partition) ?? NO_OFFSET;
      const storedId = ids.get(slice.partition) ?? null;
      // Offsets of another topic id are of another log: equal numbers there mean nothing.
      if (current !== slice.base || (storedId !== null && topicId !== null && storedId !== topicId)) {
        fenced.push({ partition: slice.partition, stored: current });
        continue;
      }
      for (const [id, n] of slice.counts) totals.set(id, (totals.get(id) ?? 0) + n);
      offsets.push([slice.partition, slice.next]);
      views += slice.views;
    }

    let rowsUpdated = 0;
    if (totals.size > 0) {
      // Sorted ids: every worker locks product rows in the same order, so two flushes cannot deadlock.
      const sortedIds = [...totals.keys()].sort();
      const sortedCounts = sortedIds.map((id) => totals.get(id)!);
      const res = await tx.execute(sql`
        UPDATE products p SET view_count = p.view_count + v.n, updated_at = now()
        FROM unnest(${sql.param(sortedIds)}::uuid[], ${sql.param(sortedCounts)}::bigint[]) AS v(id, n)
        WHERE p.id = v.id`);
      rowsUpdated = res.count;
    }
    if (offsets.length > 0) {
      await tx.execute(sql`
        UPDATE view_offsets o SET next_offset = v.next, topic_id = coalesce(${topicId}::uuid, o.topic_id), updated_at = now()
        FROM unnest(${sql.param(offsets.map((o) => o[0]))}::int[], ${sql.param(offsets.map((o) => o[1]))}::bigint[]) AS v(partition, next)
        WHERE o.topic = ${topic} AND o.partition = v.partition`);
      await tx.execute(sql`SELECT pg_notify(${FLUSH_CHANNEL}, '')`);
    }
    return { rowsUpdated, unknownProducts: totals.size - rowsUpdated, fenced, views };
  });
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
  await db.transaction(async (tx) => {
    await tx.execute(sql`
      SELECT 1 FROM view_offsets WHERE topic = ${topic} AND partition = ANY(${sql.param(partitions)}::int[]) FOR UPDATE`);
    await tx.execute(sql`
      UPDATE view_offsets o SET next_offset = v.next, topic_id = ${topicId}::uuid, updated_at = now()
      FROM unnest(${sql.param(partitions)}::int[], ${sql.param(partitions.map((p) => next.get(p)!))}::bigint[]) AS v(partition, next)
      WHERE o.topic = ${topic} AND o.partition = v.partition`);
  });
}
