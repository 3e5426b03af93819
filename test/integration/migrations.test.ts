import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { getTableConfig } from "drizzle-orm/pg-core";
import { connect, type Database } from "../../src/db/client.ts";
import { migrate } from "../../src/db/migrate.ts";
import { products, viewOffsets } from "../../src/db/schema.ts";
import { loadConfig } from "../../src/config.ts";
import { bounded } from "./harness.ts";

async function schemaSnapshot(db: Database) {
  return db.sql`
    SELECT table_name, column_name, data_type, is_nullable, column_default
    FROM information_schema.columns WHERE table_schema = current_schema()
    ORDER BY table_name, ordinal_position`;
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

  test("the SQL files create exactly the columns the drizzle schema declares", async () => {
    await migrate(db.sql);
    for (const table of [products, viewOffsets]) {
      const cfg = getTableConfig(table);
      const cols = await db.sql<{ column_name: string; is_nullable: string }[]>`
        SELECT column_name, is_nullable FROM information_schema.columns
        WHERE table_schema = ${schema} AND table_name = ${cfg.name} ORDER BY column_name`;
      expect(cols.map((c) => c.column_name)).toEqual(cfg.columns.map((c) => c.name).sort());
      for (const c of cfg.columns) {
        expect({ column: c.name, nullable: cols.find((x) => x.column_name === c.name)?.is_nullable }).toEqual({
          column: c.name,
          nullable: c.notNull ? "NO" : "YES",
        });
      }
    }
  });

  test("view_count can never go negative", async () => {
    await migrate(db.sql);
    await expect(db.sql`INSERT INTO products (name, view_count) VALUES ('x', -1)`).rejects.toThrow(/check/i);
  });
});
