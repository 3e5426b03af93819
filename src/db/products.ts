import { asc, desc, eq, gt, sql } from "drizzle-orm";
import type { Db } from "./client.ts";
import { products } from "./schema.ts";
import type { NewProduct, Product, Rank } from "../domain/product.ts";

// Every column but the viewer sketch, which only the worker's SQL touches (up to ~5 KB a row).
const columns = {
  id: products.id,
  name: products.name,
  description: products.description,
  viewCount: products.viewCount,
  uniqueViewers: products.uniqueViewers,
  createdAt: products.createdAt,
  updatedAt: products.updatedAt,
};

type Row = { [K in keyof typeof columns]: (typeof products.$inferSelect)[K] };

function toProduct(r: Row): Product {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    view_count: r.viewCount,
    unique_viewers: r.uniqueViewers,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  };
}

export async function createProduct(db: Db, p: NewProduct): Promise<Product> {
  if (p.viewCount === 0) {
    const [row] = await db.insert(products).values({ name: p.name, description: p.description }).returning(columns);
    return toProduct(row!);
  }
  // Views it is created with go into the history too, in the hour of its creation: its series sums to its count.
  const [row] = await db.execute<{
    id: string;
    name: string;
    description: string;
    view_count: string;
    unique_viewers: string;
    created_at: Date;
    updated_at: Date;
  }>(sql`
    WITH p AS (
      INSERT INTO products (name, description, view_count) VALUES (${p.name}, ${p.description}, ${p.viewCount})
      RETURNING id, name, description, view_count, unique_viewers, created_at, updated_at
    ),
    h AS (
      INSERT INTO view_hours (product_id, hour, views)
      SELECT id, date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', view_count FROM p
    )
    SELECT * FROM p`);
  const r = row!;
  return toProduct({
    id: r.id,
    name: r.name,
    description: r.description,
    viewCount: Number(r.view_count),
    uniqueViewers: Number(r.unique_viewers),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  });
}

export async function getProduct(db: Db, id: string): Promise<Product | null> {
  const [row] = await db.select(columns).from(products).where(eq(products.id, id)).limit(1);
  return row ? toProduct(row) : null;
}

/** The top `limit` by `by` (one scan and sort of products); by unique_viewers, only products that have any. */
export async function topProducts(db: Db, limit: number, by: Rank = "view_count"): Promise<Product[]> {
  const q = db.select(columns).from(products);
  const rows =
    by === "view_count"
      ? await q.orderBy(desc(products.viewCount), asc(products.id)).limit(limit)
      : await q.where(gt(products.uniqueViewers, 0)).orderBy(desc(products.uniqueViewers), asc(products.id)).limit(limit);
  return rows.map(toProduct);
}

/** The products among `ids` (primary-key lookups; any order). */
export async function productsByIds(db: Db, ids: readonly string[]): Promise<Product[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .select(columns)
    .from(products)
    .where(sql`${products.id} = ANY(${sql.param(ids)}::uuid[])`);
  return rows.map(toProduct);
}

/** The subset of `ids` that exist. */
export async function existingIds(db: Db, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  // One array parameter, not one parameter per id: the statement text stays the same for any batch size.
  const rows = await db
    .select({ id: products.id })
    .from(products)
    .where(sql`${products.id} = ANY(${sql.param(ids)}::uuid[])`);
  return new Set(rows.map((r) => r.id));
}

/** A few of `ids` that match no product, for a rate-limited log line. */
export async function sampleUnknown(db: Db, ids: readonly string[], limit = 5): Promise<string[]> {
  const rows = await db.execute<{ id: string }>(sql`
    SELECT v.id::text AS id FROM unnest(${sql.param(ids)}::uuid[]) AS v(id)
    WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = v.id) LIMIT ${limit}`);
  return rows.map((r) => r.id);
}
