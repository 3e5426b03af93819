import type { Database } from "./client.ts";

// The contract between the worker's flush and every API's top-N (db/top.ts): a Postgres NOTIFY on one channel,
// sent in the flush statement so it arrives exactly at commit, naming the changed products that can rank as
// "id:count,id:count" (at most 100 entries, well under NOTIFY's 8000-byte payload limit).

export const FLUSH_CHANNEL = "product_views_flushed";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A NOTIFY payload: "id:count,id:count" (the worker's changed rows). Null when it is not one (re-read all). */
export function parseChanged(payload: string): string[] | null {
  if (payload === "") return [];
  const ids: string[] = [];
  for (const item of payload.split(",")) {
    const id = item.slice(0, item.indexOf(":"));
    if (!UUID.test(id)) return null;
    ids.push(id);
  }
  return ids;
}

/** Names products whose count changed outside a flush (created with views) to every API's top-N. */
export async function notifyChanged(sql: Database["sql"], rows: readonly { id: string; view_count: number }[]): Promise<void> {
  await sql`SELECT pg_notify(${FLUSH_CHANNEL}, ${rows.map((r) => `${r.id}:${r.view_count}`).join(",")})`;
}
