import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { getTableConfig } from "drizzle-orm/pg-core";
import { connect, type Database } from "../../src/db/client.ts";
import { migrate } from "../../src/db/migrate.ts";
import { products, STORAGE_OPTIONS, viewKeys, viewOffsets } from "../../src/db/schema.ts";
import { loadConfig } from "../../src/config.ts";
import { bounded } from "./harness/wait.ts";

async function schemaSnapshot(db: Database) {
  return db.sql`
    SELECT table_name, column_name, data_type, is_nullable, column_default
    FROM information_schema.columns WHERE table_schema = current_schema()
    ORDER BY table_name, ordinal_position`;
}

/** A column default as Postgres prints it, without its cast and quotes: "''::text" -> "", "0" -> "0". */
function pgDefault(text: string): string {
  const bare = text.replace(/::[a-z ]+$/, "");
  return bare.startsWith("'") && bare.endsWith("'") ? bare.slice(1, -1) : bare;
}

/** A drizzle default in the same form: a literal as text, an SQL expression (sql`now()`) as its text. */
function drizzleDefault(d: unknown): string {
  if (d !== null && typeof d === "object" && "queryChunks" in d) {
    return (d as { queryChunks: { value?: string[] }[] }).queryChunks.map((c) => c.value?.join("") ?? "").join("");
  }
  return String(d);
}

describe("migrations", () => {
  // A scratch schema of its own, so applying from nothing does not disturb the other tests.
  const schema = `mig_${Date.now().toString(36)}`;
  let db: Database;
  beforeAll(async () => {
    const admin = connect(loadConfig().db, "test");
    await admin.sql.unsafe(`CREATE SCHEMA ${schema}`);
    await bounded("admin.close", admin.close());
    const url = new URL(loadConfig().db.url);
    url.searchParams.set("options", `-c search_path=${schema},public`);
    db = connect({ url: url.toString(), poolSize: 1 }, "test-migrations");
  });
  afterAll(async () => {
    await db.sql.unsafe(`DROP SCHEMA ${schema} CASCADE`);
    await bounded("db.close", db.close());
  });

  test("applied twice, they leave the same schema and apply nothing the second time", async () => {
    const first = await migrate(db.sql);
    expect(first.length).toBeGreaterThan(0);
    const after1 = await schemaSnapshot(db);
    const second = await migrate(db.sql);
    expect(second).toEqual([]);
    expect(await schemaSnapshot(db)).toEqual(after1);
  });

  test("the SQL files create exactly what the drizzle schema declares: columns, types, nullability, defaults, keys, checks, storage", async () => {
    await migrate(db.sql);
    for (const table of [products, viewOffsets, viewKeys]) {
      const cfg = getTableConfig(table);
      const rel = `${schema}.${cfg.name}`;
      const cols = await db.sql<{ column_name: string; data_type: string; is_nullable: string; column_default: string | null }[]>`
        SELECT column_name, CASE WHEN data_type = 'USER-DEFINED' THEN udt_name ELSE data_type END AS data_type,
          is_nullable, column_default FROM information_schema.columns
        WHERE table_schema = ${schema} AND table_name = ${cfg.name} ORDER BY column_name`;
      const actual = cols.map((c) => ({
        column: c.column_name,
        type: c.data_type,
        nullable: c.is_nullable === "YES",
        default: c.column_default === null ? null : pgDefault(c.column_default),
      }));
      const declared = cfg.columns
        .map((c) => ({
          column: c.name,
          type: c.getSQLType(),
          nullable: !c.notNull,
          default: c.hasDefault ? drizzleDefault(c.default) : null,
        }))
        .sort((a, b) => a.column.localeCompare(b.column));
      expect(actual).toEqual(declared);

      const pk = await db.sql<{ attname: string }[]>`
        SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = ${rel}::regclass AND i.indisprimary ORDER BY a.attname`;
      const declaredPk = [
        ...cfg.columns.filter((c) => c.primary).map((c) => c.name),
        ...cfg.primaryKeys.flatMap((k) => k.columns.map((c) => c.name)),
      ];
      expect(pk.map((r) => r.attname)).toEqual(declaredPk.sort());

      const checks = await db.sql<{ conname: string }[]>`
        SELECT conname FROM pg_constraint WHERE conrelid = ${rel}::regclass AND contype = 'c' ORDER BY conname`;
      expect(checks.map((r) => r.conname)).toEqual(cfg.checks.map((c) => c.name).sort());

      const [storage] = await db.sql<{ reloptions: string[] | null }[]>`SELECT reloptions FROM pg_class WHERE oid = ${rel}::regclass`;
      expect({ table: cfg.name, storage: storage!.reloptions }).toEqual({ table: cfg.name, storage: STORAGE_OPTIONS[cfg.name] ?? null });
    }
  });

  test("view_count can never go negative", async () => {
    await migrate(db.sql);
    await expect(db.sql`INSERT INTO products (name, view_count) VALUES ('x', -1)`).rejects.toThrow(/check/i);
  });
});
