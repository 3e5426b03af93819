import { sql } from "drizzle-orm";
import type { Db } from "./client.ts";

// The worker's position per topic partition (view_offsets), written by the flush statement with the counts it covers
// (db/flush.ts), so a replayed message is recognised and skipped.

/** No offset stored yet for a partition. */
export const NO_OFFSET = -1;

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
