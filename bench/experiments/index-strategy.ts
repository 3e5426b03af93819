// Index strategy for top-N, measured side by side on copies of the products table (100 000 rows):
// A) no index on view_count (fillfactor 70, HOT updates) + the in-memory top-100 refreshed by one seq-scan query;
// B) an index on (view_count DESC, id): every count update must touch the index (no HOT), top-100 is an index scan.
// Each variant gets the same flushes: Zipf-distributed ids, one UPDATE ... FROM unnest() per flush.
//   bun bench/experiments/index-strategy.ts   (DATABASE_URL of the stack)
import postgres from "postgres";
import { zipfOf } from "../k6/zipf.js";

const sql = postgres(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/product_views", { max: 1, onnotice: () => {} });
const FLUSHES = Number(process.env.FLUSHES ?? 300);
const PER_FLUSH = Number(process.env.PER_FLUSH ?? 2000);

const N = 100_000;

async function variant(name: string, indexed: boolean) {
  const table = `idx_bench_${name}`;
  await sql.unsafe(`DROP TABLE IF EXISTS ${table}`);
  await sql.unsafe(`CREATE TABLE ${table} (LIKE products INCLUDING DEFAULTS INCLUDING CONSTRAINTS) WITH (fillfactor = 70)`);
  await sql.unsafe(`ALTER TABLE ${table} ADD PRIMARY KEY (id)`);
  await sql.unsafe(`INSERT INTO ${table} (name) SELECT 'p' || g FROM generate_series(1, ${N}) g`);
  if (indexed) await sql.unsafe(`CREATE INDEX ON ${table} (view_count DESC, id)`);
  await sql.unsafe(`VACUUM ANALYZE ${table}`);
  const ids = (await sql.unsafe(`SELECT id FROM ${table} ORDER BY name`)).map((r) => r.id as string);
  let updateMs = 0;
  const draw = zipfOf(ids);
  for (let f = 0; f < FLUSHES; f++) {
    const counts = new Map<string, number>();
    for (let i = 0; i < PER_FLUSH; i++) {
      const id = draw();
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const sorted = [...counts.keys()].sort();
    const t0 = performance.now();
    await sql.unsafe(
      `UPDATE ${table} p SET view_count = p.view_count + v.n, updated_at = now() FROM unnest($1::uuid[], $2::bigint[]) AS v(id, n) WHERE p.id = v.id`,
      [sorted, sorted.map((id) => counts.get(id)!)],
    );
    updateMs += performance.now() - t0;
  }
  const topRuns = 50;
  const t1 = performance.now();
  for (let i = 0; i < topRuns; i++) await sql.unsafe(`SELECT * FROM ${table} ORDER BY view_count DESC, id LIMIT 100`);
  const topMs = (performance.now() - t1) / topRuns;
  const [st] = await sql.unsafe(
    `SELECT n_tup_upd, n_tup_hot_upd, pg_total_relation_size('${table}') AS bytes FROM pg_stat_user_tables WHERE relname = '${table}'`,
  );
  await sql.unsafe(`DROP TABLE ${table}`);
  return {
    variant: name,
    flushMsAvg: +(updateMs / FLUSHES).toFixed(2),
    hotUpdatePct: +((Number(st!.n_tup_hot_upd) / Math.max(1, Number(st!.n_tup_upd))) * 100).toFixed(1),
    top100QueryMs: +topMs.toFixed(2),
    sizeMB: +(Number(st!.bytes) / 1024 / 1024).toFixed(1),
  };
}

// Alternated twice, so warm-up and checkpoints do not favour whichever runs second.
const results = [];
for (const round of [1, 2]) {
  results.push({ round, ...(await variant("no_index", false)) });
  results.push({ round, ...(await variant("view_count_index", true)) });
}
console.table(results);
console.log(JSON.stringify(results));
await sql.end();
