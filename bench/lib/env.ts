// Where the bench runs: the stack's addresses and data, the rates each ladder steps through, this run's stamp.
import postgres from "postgres";
import { join } from "node:path";

export const ROOT = join(import.meta.dir, "..", "..");

/** The stack's data folder (scripts/stack.sh: PV_DATA_DIR, by default .data): pid files, Postgres. */
export const STACK_DATA = process.env.PV_DATA_DIR ?? join(ROOT, ".data");

/** The bench's own files: the seeded ids and the request bodies. */
export const DATA = join(ROOT, ".data", "bench");

export const RESULTS = join(ROOT, "bench", "results");

export const K6 = process.env.K6 ?? join(ROOT, ".cache", "k6", "bin", "k6");

export const API = process.env.API_URL ?? "http://127.0.0.1:8080";

export const WORKER = process.env.WORKER_URL ?? "http://127.0.0.1:9464";

export const BASELINE_PORT = 8090;

export const BASELINE = `http://127.0.0.1:${BASELINE_PORT}`;

export const STEP = process.env.BENCH_STEP ?? "15s";

export const SEED = Number(process.env.BENCH_PRODUCTS ?? 100_000);

/** 15 s warm-up steps before the CPU measurement, at most (warmUntilSteady). */
export const WARM_STEPS_MAX = Number(process.env.BENCH_WARM_STEPS_MAX ?? 8);

// postgres.js connects at the first query, so importing this file opens nothing.
export const sql = postgres(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/product_views", { max: 2, onnotice: () => {} });

// The view ladders (the API's and the bare server's) reach 24 000-32 000/s since bench/load.ts sends them (2026-12-07, 798e7a3).
export const RATES = (
  process.env.BENCH_RATES ?? "1000,2000,4000,6000,8000,10000,12000,14000,16000,20000,24000,28000,32000,36000,40000,48000"
)
  .split(",")
  .map(Number);

export const BATCH_RATES = (process.env.BENCH_BATCH_RATES ?? "100,250,500,1000,1500,2000,2500,3000,4000,5000,6000").split(",").map(Number);

// Finer than RATES: the two GET ladders' ratio is read from them (steps 1 000 apart gave only 0.5x or 1x).
export const TOP_RATES = (process.env.BENCH_TOP_RATES ?? "1000,1500,2000,2500,3000,3500,4000,5000,6000,7000,8000").split(",").map(Number);

export const RUN_STAMP = new Date().toISOString().replace(/[:.]/g, "-");

/**
 * The request bodies of the batch scenario (k6 and bench/load.ts) and of load.ts's single views: BODY_FILES files of
 * `perFile` lines, each line a body from `body()`, whose ids are drawn from the k6 script's law (k6/zipf.js).
 * Batch bodies: 40 per file, 100 views each. Built here because k6 pays dearly for them: built
 * in goja they took seconds per VU, and read from a SharedArray each request cost ~4 ms of k6's CPU (1 core at 250
 * requests/s). Each VU sends the 40 bodies of one file in turn. 10 000 bodies (1 000 000 draws), and at least 100
 * VUs (4 000 bodies) in any step, so that one flush of the worker, even a 3 s one at 100 000 views/s (3 000 requests),
 * sees about as many distinct products as fresh draws would: 200 bodies (5 700 distinct), or each VU cycling 8,
 * capped the rows a flush can write, which flattered the write amplification. Single-view bodies: 400 per file,
 * 100 000 draws.
 */
export const BODY_FILES = 250;
