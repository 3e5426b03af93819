// What the tests read in Postgres: counts, and the exactness check every load ends with.
import { expect } from "bun:test";
import type { Database } from "../../../src/db/client.ts";
import { waitFor } from "./wait.ts";

export async function seedProducts(db: Database, n: number, prefix = "p"): Promise<string[]> {
  const rows = await db.sql<{ id: string }[]>`
    INSERT INTO products (name) SELECT ${prefix} || '-' || g FROM generate_series(1, ${n}) AS g RETURNING id`;
  return rows.map((r) => r.id);
}

export async function viewCounts(db: Database, ids: readonly string[]): Promise<Map<string, number>> {
  const rows = await db.sql<{ id: string; view_count: string }[]>`
    SELECT id, view_count FROM products WHERE id = ANY(${ids as string[]}::uuid[])`;
  return new Map(rows.map((r) => [r.id, Number(r.view_count)]));
}

/**
 * Waits until every product's count grew by exactly its acknowledged views, then checks it stays there.
 * `maybe`: views answered 503 "written: unknown" (sent, answer lost): each may or may not be counted, so a
 * product may exceed its acknowledged views by at most that many. 503 "written: no" never counts.
 */
export async function expectExactCounts(
  db: Database,
  before: Map<string, number>,
  acked: Map<string, number>,
  ids: readonly string[],
  timeoutMs = 60_000,
  maybe: Map<string, number> = new Map(),
): Promise<void> {
  const diff = async () => {
    const now = await viewCounts(db, ids);
    const wrong: string[] = [];
    for (const id of ids) {
      const got = (now.get(id) ?? 0) - (before.get(id) ?? 0);
      const want = acked.get(id) ?? 0;
      const extra = maybe.get(id) ?? 0;
      if (got < want || got > want + extra)
        wrong.push(`${id}: counted ${got}, acknowledged ${want}${extra ? ` (+ up to ${extra} unknown)` : ""}`);
    }
    return wrong;
  };
  try {
    await waitFor("exact counts", async () => (await diff()).length === 0, timeoutMs, 200);
  } catch {
    const wrong = await diff();
    throw new Error(`counts not exact for ${wrong.length} products, e.g. ${wrong.slice(0, 5).join("; ")}`);
  }
  // A late duplicate would show up after the counts first matched.
  await Bun.sleep(1000);
  expect(await diff()).toEqual([]);
}

/** Increase of each product's count since `before`, and the total. */
export async function countedSince(db: Database, before: Map<string, number>, ids: readonly string[]) {
  const now = await viewCounts(db, ids);
  const per = new Map(ids.map((id) => [id, (now.get(id) ?? 0) - (before.get(id) ?? 0)]));
  return { per, total: [...per.values()].reduce((a, b) => a + b, 0) };
}
