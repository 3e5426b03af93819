import type { Product } from "../domain/product.ts";

// Why the top-N can be kept without scanning the table: view counts only grow. After a flush, a product is in
// the new top-N only if it was in the old one, or its count changed in that flush and it ranks in the top-N of
// that flush's changed rows (else N changed products already rank above it, and they only grow). So the worker
// names the top-N of each flush's changed rows in its NOTIFY, and the API re-reads the old top-N plus those:
// at most 2N primary-key lookups per flush, whatever the table's size.

/** /top's order: most viewed first, then by id (Postgres compares uuids as their lower-case hex text). */
export function byRank(a: { view_count: number; id: string }, b: { view_count: number; id: string }): number {
  return b.view_count - a.view_count || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The top `n` of `rows` by byRank; duplicates by id keep the highest count (counts only grow). */
export function topOf(rows: Iterable<Product>, n: number): Product[] {
  const best = new Map<string, Product>();
  for (const r of rows) {
    const had = best.get(r.id);
    if (!had || r.view_count > had.view_count) best.set(r.id, r);
  }
  return [...best.values()].sort(byRank).slice(0, n);
}

/**
 * Whether the ranking can move without a NOTIFY naming the product: while the top-N is not full, or ends in
 * products with no views, a product inserted with 0 views (by anyone) can take a place in it.
 */
export function needsFullRead(rows: readonly Product[], n: number): boolean {
  return rows.length < n || rows[rows.length - 1]!.view_count === 0;
}
