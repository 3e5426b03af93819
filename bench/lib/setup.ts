// Before any scenario: the seeded products, the request bodies, the warmed API, and the machine's versions.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { zipfOf } from "../k6/zipf.js";
import { API, BODY_FILES, DATA, K6, ROOT, SEED, sql } from "./env.ts";
import { log } from "./log.ts";
import { account, totalViews } from "./steps.ts";

export async function seed() {
  const [c] = await sql<{ n: string }[]>`SELECT count(*)::text AS n FROM products WHERE name LIKE 'bench-%'`;
  const have = Number(c!.n);
  if (have < SEED) {
    await sql`INSERT INTO products (name, description) SELECT 'bench-' || g, 'seeded for the bench' FROM generate_series(${have + 1}::int, ${SEED}::int) AS g`;
    log(`seeded ${SEED - have} products`);
  }
  const ids = await sql<{ id: string }[]>`SELECT id FROM products WHERE name LIKE 'bench-%' ORDER BY name LIMIT ${SEED}`;
  const productIds = ids.map((r) => r.id);
  writeFileSync(join(DATA, "ids.json"), JSON.stringify(productIds));
  const batchId = zipfOf(productIds);
  writeBodies(join(DATA, "batch-bodies"), 40, () => ({ views: Array.from({ length: 100 }, () => ({ product_id: batchId() })) }));
  const viewId = zipfOf(productIds);
  writeBodies(join(DATA, "view-bodies"), 400, () => ({ product_id: viewId() }));
  // The API caches known ids; warm it so the first step measures steady state, not 100k cold lookups.
  // Those warm-up views are accounted too, and must be fully counted before any step takes its baseline.
  const before = await totalViews();
  let warm = 0;
  for (let i = 0; i < ids.length; i += 1000) {
    const views = ids.slice(i, i + 1000).map((r) => ({ product_id: r.id, count: 1 }));
    const res = await fetch(`${API}/api/v1/products/views`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${process.env.INGEST_TOKEN ?? ""}` },
      body: JSON.stringify({ views }),
    });
    if (res.status === 202) warm += views.length;
  }
  const acc = await account(before, warm, 0, 0);
  log(`warm-up: ${warm} views accepted, ${acc.counted} counted (${acc.exact ? "exact" : "NOT EXACT"})`);
}

export function writeBodies(dir: string, perFile: number, body: () => unknown) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (let f = 0; f < BODY_FILES; f++) {
    writeFileSync(join(dir, `${f}.txt`), Array.from({ length: perFile }, () => JSON.stringify(body())).join("\n"));
  }
}

export function versions() {
  const run = (cmd: string[]) => {
    try {
      return Bun.spawnSync(cmd).stdout.toString().trim().split("\n")[0];
    } catch {
      return "?";
    }
  };
  return {
    bun: Bun.version,
    k6: run([K6, "version"]),
    postgres: run(["psql", "--version"]),
    kafka: readFileSync(join(ROOT, "scripts", "kafka", "pom.xml"), "utf8").match(/<kafka.version>(.*)</)?.[1],
    cores: navigator.hardwareConcurrency,
    memoryGB: Math.round(Number(/MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1]) / 1024 / 1024),
  };
}
