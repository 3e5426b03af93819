// One k6 script for every scenario (open model: constant-arrival-rate). Env:
//   SCENARIO = view | batch | top | mixed     TARGET = http://127.0.0.1:8080     RATE = iterations/s
//   DURATION = 20s   IDS = path of a JSON array of product ids (else fetched from TARGET)   P99_MS = 50
//   KEYS = 1: every view request carries its own Idempotency-Key (what a retrying client sends)
//   Against any deployment: TARGET=https://views.example SCENARIO=view RATE=500 k6 run bench/k6/load.js
import http from "k6/http";
import { Counter } from "k6/metrics";
import { SharedArray } from "k6/data";
import exec from "k6/execution";

const SCENARIO = __ENV.SCENARIO || "view";
const TARGET = __ENV.TARGET || "http://127.0.0.1:8080";
const RATE = Number(__ENV.RATE || 1000);
const DURATION = __ENV.DURATION || "20s";
const P99 = Number(__ENV.P99_MS || 50);
const BATCH = Number(__ENV.BATCH || 100);
const KEYS = __ENV.KEYS === "1";
// Unique across runs (the API and the worker remember keys for 10 minutes) and across VUs (iterationInTest).
const KEY_PREFIX = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;

// Product ids: a JSON file (IDS, what make bench writes), or, against any deployment, the ids the API itself
// lists in GET /top?limit=100, fetched once in setup() (k6 allows no requests in the init stage).
const fileIds = __ENV.IDS ? new SharedArray("ids", () => JSON.parse(open(__ENV.IDS))) : null;
const acceptedViews = new Counter("accepted_views");

export function setup() {
  if (fileIds) return { ids: null };
  // responseType: the options discard response bodies, this one is needed.
  const res = http.get(`${TARGET}/api/v1/products/top?limit=100`, { responseType: "text" });
  const list = res.status === 200 ? JSON.parse(res.body).map((p) => p.id) : [];
  if (list.length === 0) throw new Error(`no product ids: set IDS, or create products at ${TARGET}`);
  return { ids: list };
}

// Request bodies are built once per VU (goja is slow at building JSON, and on a 2-core machine every CPU cycle k6
// spends is taken from the system under test), on the VU's first iteration. Each draws its ids from a Zipf law
// (s = 1.1, by inverting the continuous power law: O(1), no table per VU).
const POOL = Number(__ENV.POOL || 100);
const viewBodies = [];
const batchBodies = [];
let cursor = 0;

function zipfOf(ids) {
  const S = 1.1;
  const N = ids.length;
  const A = N ** (1 - S) - 1;
  return () => ids[Math.min(N - 1, Math.floor((A * Math.random() + 1) ** (1 / (1 - S))) - 1)];
}

function makeBatchBodies(ids) {
  const zipfId = zipfOf(ids);
  const out = [];
  for (let i = 0; i < 200; i++) {
    const views = [];
    for (let j = 0; j < BATCH; j++) views.push({ product_id: zipfId() });
    out.push(JSON.stringify({ views }));
  }
  return out;
}

// Batch bodies take goja seconds to build: with an id file they are built once per run and shared by every VU.
// Built per VU, each VU's first iteration took 15-17 s and the step's VUs queued behind each other's building
// (the batch step failed at 100 req/s with the API idle).
const sharedBatchBodies = fileIds && SCENARIO === "batch" ? new SharedArray("batch", () => makeBatchBodies(fileIds)) : null;
let built = false;

function buildBodies(ids) {
  built = true;
  const zipfId = zipfOf(ids);
  if (SCENARIO === "view" || SCENARIO === "mixed") {
    for (let i = 0; i < POOL; i++) viewBodies.push(JSON.stringify({ product_id: zipfId() }));
  }
  if (SCENARIO === "batch" && !sharedBatchBodies) batchBodies.push(...makeBatchBodies(ids));
  cursor = Math.floor(Math.random() * POOL);
}

const params = { headers: { "content-type": "application/json" }, tags: { kind: "write" } };

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ["avg", "min", "med", "p(90)", "p(95)", "p(99)", "max"],
  scenarios: {
    load: {
      executor: "constant-arrival-rate",
      rate: RATE,
      timeUnit: "1s",
      duration: DURATION,
      preAllocatedVUs: Math.min(Math.max(100, Math.ceil(RATE / 10)), 1500),
      maxVUs: 2000,
    },
  },
  thresholds: {
    http_req_failed: ["rate<0.001"],
    http_req_duration: [`p(99)<${P99}`],
    dropped_iterations: ["count==0"],
  },
};

function view() {
  cursor = (cursor + 1) % viewBodies.length;
  const p = KEYS
    ? {
        headers: { "content-type": "application/json", "idempotency-key": `${KEY_PREFIX}-${exec.scenario.iterationInTest}` },
        tags: params.tags,
      }
    : params;
  const res = http.post(`${TARGET}/api/v1/products/view`, viewBodies[cursor], p);
  if (res.status === 202) acceptedViews.add(1);
}

function batch() {
  const bodies = sharedBatchBodies ?? batchBodies;
  cursor = (cursor + 1) % bodies.length;
  const res = http.post(`${TARGET}/api/v1/products/views`, bodies[cursor], params);
  if (res.status === 202) acceptedViews.add(BATCH);
}

function top() {
  http.get(`${TARGET}/api/v1/products/top?limit=10`, { tags: { kind: "read" } });
}

export default function (data) {
  if (!built && SCENARIO !== "top") buildBodies(fileIds ?? data.ids);
  if (SCENARIO === "view") view();
  else if (SCENARIO === "batch") batch();
  else if (SCENARIO === "top") top();
  else if (SCENARIO === "mixed") (Math.random() < 0.9 ? view : top)();
  else throw new Error(`unknown SCENARIO ${SCENARIO}`);
}
