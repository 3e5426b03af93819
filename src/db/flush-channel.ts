import type { Database } from "./client.ts";

// The contract between the worker's flush and every API's top-N (ranking/top.ts): a Postgres NOTIFY on one channel,
// sent in the flush statement so it arrives exactly at commit, naming the changed products that can rank with
// their counts after the flush, "at=<ms>;id:count,id:count" (at most 100 entries, well under NOTIFY's 8000-byte
// payload limit). `at` is the flush's now(), which its UPDATE wrote as each row's updated_at (milliseconds since
// the epoch, truncated as a JavaScript Date truncates it): with it the API can rank the named products it already
// lists without reading them again. A payload without it ("id:count,...", as sent on product creation or by a
// worker of an earlier version) names products to read.

export const FLUSH_CHANNEL = "product_views_flushed";
/**
 * The same form for the unique-viewer ranking: a flush that folded in public viewers names the top 100 of its
 * changed products by unique_viewers, with their estimates. A channel of its own, so an API that does not rank by
 * unique viewers (or predates them) never hears it.
 */
export const FLUSH_CHANNEL_UV = "product_views_flushed_uv";

/**
 * The 1 h window's candidates: the (at most 100) products a flush added the most views to inside the last hour, in
 * the same form, but each count is what the flush added, not a total. An API ranking the window reads these products'
 * window totals again (ranking/top-window.ts): any product that rose in the window is named by the flush that raised it,
 * unless 100 others rose more in that flush.
 */
export const FLUSH_CHANNEL_1H = "product_views_flushed_1h";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const COUNT = /^\d{1,16}$/;

export interface FlushNotice {
  /** The flush's time (its rows' updated_at), in epoch milliseconds; null when the sender did not say. */
  at: number | null;
  items: Array<{ id: string; count: number }>;
}

/** A NOTIFY payload of the channel. Null when it is not one (then the whole ranking must be re-read). */
export function parseFlush(payload: string): FlushNotice | null {
  let at: number | null = null;
  let list = payload;
  if (payload.startsWith("at=")) {
    const end = payload.indexOf(";");
    const ms = payload.slice(3, end);
    if (end < 0 || !COUNT.test(ms)) return null;
    at = Number(ms);
    list = payload.slice(end + 1);
  }
  const items: FlushNotice["items"] = [];
  if (list === "") return { at, items };
  for (const item of list.split(",")) {
    const colon = item.indexOf(":");
    const id = item.slice(0, colon);
    const count = item.slice(colon + 1);
    if (colon < 0 || !UUID.test(id) || !COUNT.test(count)) return null;
    items.push({ id, count: Number(count) });
  }
  return { at, items };
}

/** Names products whose count changed outside a flush (created with views) to every API's top-N. */
export async function notifyChanged(sql: Database["sql"], rows: readonly { id: string; view_count: number }[]): Promise<void> {
  await sql`SELECT pg_notify(${FLUSH_CHANNEL}, ${rows.map((r) => `${r.id}:${r.view_count}`).join(",")})`;
}
