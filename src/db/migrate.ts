import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Sql } from "./client.ts";

export const MIGRATIONS_DIR = join(import.meta.dir, "..", "..", "sql");
// Any fixed number: serialises concurrent migrators (API and worker starting together).
const LOCK_KEY = 7_204_311;

/** Applies every sql/NNNN_*.sql not yet recorded, each in its own transaction. Safe to run any number of times. */
export async function migrate(sql: Sql, dir = MIGRATIONS_DIR): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_.+\.sql$/.test(f)).sort();
  const applied: string[] = [];
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${LOCK_KEY})`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
      name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`;
    const done = new Set((await tx<{ name: string }[]>`SELECT name FROM schema_migrations`).map((r) => r.name));
    for (const file of files) {
      if (done.has(file)) continue;
      await tx.unsafe(await Bun.file(join(dir, file)).text());
      await tx`INSERT INTO schema_migrations (name) VALUES (${file})`;
      applied.push(file);
    }
  });
  return applied;
}
