import type { Product, Rank } from "../domain/product.ts";
import type { FlushNotice } from "../db/flush-channel.ts";

// Why the top-N can be kept without scanning the table: view counts only grow. After a flush, a product is in
// the new top-N only if it was in the old one, or its count changed in that flush and it ranks in the top-N of
// that flush's changed rows (else N changed products already rank above it, and they only grow). So the worker
// names the top-N of each flush's changed rows in its NOTIFY, and the API re-reads the old top-N plus those:
// at most 2N primary-key lookups per flush, whatever the table's size. Since the NOTIFY carries each named
// product's count after the flush and the flush's time (its updated_at), the API needs no read at all when every
// named product is listed already or cannot enter the list: mergeNotice() below.

// The same holds for unique viewers, ranked by a second cache (by = "unique_viewers"): a sketch only grows, and its
// estimate with it (HyperLogLog's estimator is monotone in its registers but for rare steps where it changes
// method; such a dip is set right by the next full read). That ranking lists only products with viewers: a
// product enters it only through a flush that names it, so it never needs a full read to see an insert.

type Scored = { id: string } & Partial<Record<Rank, number>>;
const score = (p: Scored, by: Rank) => p[by] ?? 0;

/** /top's order: highest score first, then by id (Postgres compares uuids as their lower-case hex text). */
export function byRank(a: Scored, b: Scored, by: Rank = "view_count"): number {
  return score(b, by) - score(a, by) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The top `n` of `rows` by byRank; duplicates by id keep the highest score (scores only grow). */
export function topOf(rows: Iterable<Product>, n: number, by: Rank = "view_count"): Product[] {
  const best = new Map<string, Product>();
  for (const r of rows) {
    if (by === "unique_viewers" && r.unique_viewers === 0) continue;
    const had = best.get(r.id);
    if (!had || r[by] > had[by]) best.set(r.id, r);
  }
  return [...best.values()].sort((a, b) => byRank(a, b, by)).slice(0, n);
}

/**
 * Whether the ranking can move without a NOTIFY naming the product: while the top-N is not full, or ends in
 * products with no views, a product inserted with 0 views (by anyone) can take a place in it.
 */
export function needsFullRead(rows: readonly Product[], n: number): boolean {
  return rows.length < n || rows[rows.length - 1]!.view_count === 0;
}

/**
 * The top `n` after a flush, from the top before it (`rows`, exact) and the flush's notice, without reading
 * Postgres: the named products already listed take their new count and updated_at. Null when the notice alone
 * cannot say: it carries no time, the list may take inserts (needsFullRead), or a named product not listed
 * could enter it (its name and dates are not in the notice). A listed product that changed but is not named
 * is outranked by the `n` named ones (top-merge's first comment), so its old count does not matter.
 */
export function mergeNotice(rows: readonly Product[], notice: FlushNotice, n: number, by: Rank = "view_count"): Product[] | null {
  if (notice.at === null || (by === "view_count" && needsFullRead(rows, n))) return null;
  // A list that is not full takes any product named (unique viewers: every listed product has some).
  const last = rows.length === n ? rows[n - 1]! : null;
  const updatedAt = new Date(notice.at).toISOString();
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const { id, count } of notice.items) {
    const had = byId.get(id);
    if (had) {
      // Scores only grow: a notice older than what is listed (a read raced it) changes nothing.
      if (count > had[by]) byId.set(id, { ...had, [by]: count, updated_at: updatedAt });
    } else if (count > 0 && (last === null || byRank({ id, [by]: count }, last, by) < 0)) {
      // It outranks the last listed product: it enters, and only a read can say what it is.
      return null;
    }
  }
  return topOf(byId.values(), n, by);
}
