// One k6 script for every scenario (open model: a fixed arrival rate after a short ramp). Env:
//   SCENARIO = view | batch | top | mixed     TARGET = http://127.0.0.1:8080     RATE = iterations/s
//   (make bench runs its view, batch and bare-server ladders with bench/load.ts: this script spent ~180 µs of CPU per
//   single view and ~350 µs per 100-view request, and those ladders measured k6)
//   DURATION = 20s at RATE, after RAMP_S = 2 seconds rising from RATE/10 to RATE
//   IDS = path of a JSON array of product ids (else fetched from TARGET)   P99_MS = 50
//   BODIES = a folder of BODY_FILES text files 0.txt, 1.txt ... of batch request bodies, one per line (else built
//   from the ids, BATCH views each)
//   KEYS = 1: every view request carries its own Idempotency-Key (what a retrying client sends)
//   Against any deployment: TARGET=https://views.example SCENARIO=view RATE=500 k6 run bench/k6/load.js
import http from "k6/http";
import { Counter } from "k6/metrics";
import { SharedArray } from "k6/data";
import exec from "k6/execution";
import { zipfOf } from "./zipf.js";

const SCENARIO = __ENV.SCENARIO || "view";
const TARGET = __ENV.TARGET || "http://127.0.0.1:8080";
const RATE = Number(__ENV.RATE || 1000);
const DURATION = __ENV.DURATION || "20s";
const RAMP_S = Number(__ENV.RAMP_S ?? 2);
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
// spends is taken from the system under test), on the VU's first iteration. Each draws its ids from zipf.js's law.
const POOL = Number(__ENV.POOL || 100);
const viewBodies = [];
const batchBodies = [];
let cursor = 0;

function makeBatchBodies(ids, n) {
  const zipfId = zipfOf(ids);
  const out = [];
  for (let i = 0; i < n; i++) {
    const views = [];
    for (let j = 0; j < BATCH; j++) views.push({ product_id: zipfId() });
    out.push(JSON.stringify({ views }));
  }
  return out;
}

// Batch bodies take goja seconds to build (15-17 s per VU: the step's VUs queued behind each other's building), and a
// SharedArray is no way to share them: reading one 5 KB element cost k6 ~4 ms of CPU, a whole core at 250 requests/s.
// So the bench writes them to files (BODIES); each VU reads one, by its number, and sends its lines in turn.
const BODY_FILES = Number(__ENV.BODY_FILES || 1);
const bodiesFile = (i) => `${__ENV.BODIES}/${i}.txt`;
// k6 lets a VU open only files that its first init (__VU == 0, options only) opened: that one opens them all.
if (SCENARIO === "batch" && __ENV.BODIES && __VU === 0) for (let i = 0; i < BODY_FILES; i++) open(bodiesFile(i));
let bodiesText = SCENARIO === "batch" && __ENV.BODIES && __VU > 0 ? open(bodiesFile(__VU % BODY_FILES)) : null;
const VU_BODIES = 8; // built by the VU itself (no BODIES): what goja builds in well under a second
let built = false;

function takeBodies(text) {
  for (const body of text.split("\n")) {
    if (body !== "") batchBodies.push({ body, views: JSON.parse(body).views.reduce((n, v) => n + (v.count ?? 1), 0) });
  }
}

function buildBodies(ids) {
  built = true;
  if (SCENARIO === "view" || SCENARIO === "mixed") {
    const zipfId = zipfOf(ids);
    for (let i = 0; i < POOL; i++) viewBodies.push(JSON.stringify({ product_id: zipfId() }));
  }
  if (SCENARIO === "batch") {
    if (bodiesText) takeBodies(bodiesText);
    else for (const body of makeBatchBodies(ids, VU_BODIES)) batchBodies.push({ body, views: BATCH });
    bodiesText = null;
  }
  cursor = Math.floor(Math.random() * POOL);
}

const steady = () => (exec.instance.currentTestRunDuration >= RAMP_S * 1000 ? "steady" : "ramp");
// A trusted integration (counts above 1, one address): the ingest token `make up` made, sent to the bare server too.
const jsonHeaders = __ENV.INGEST_TOKEN
  ? { "content-type": "application/json", authorization: `Bearer ${__ENV.INGEST_TOKEN}` }
  : { "content-type": "application/json" };

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ["avg", "min", "med", "p(90)", "p(95)", "p(99)", "max"],
  scenarios: {
    load: {
      // Why the ramp: started at full rate, every run (the bare baseline server too) dropped 300-900 iterations
      // in its first second, while the step's VUs made their first connections, and failed on that alone.
      // The thresholds and the latencies the bench reports are those of the steady part (phase:steady).
      executor: "ramping-arrival-rate",
      startRate: Math.ceil(RATE / 10),
      timeUnit: "1s",
      stages: [...(RAMP_S > 0 ? [{ target: RATE, duration: `${RAMP_S}s` }] : []), { target: RATE, duration: DURATION }],
      preAllocatedVUs: Math.min(Math.max(100, Math.ceil(RATE / 10)), 1500),
      maxVUs: 2000,
    },
  },
  thresholds: {
    http_req_failed: ["rate<0.001"],
    "http_req_duration{phase:steady}": [`p(99)<${P99}`],
    "http_reqs{phase:steady}": ["count>=0"], // listed so that the summary holds the steady part's count
    // At most 0.1 % of the rate, the bound failed requests have too. A drop is an iteration k6 had no free VU for:
    // every pre-allocated VU (a tenth of the rate) waited on a response at once, i.e. the whole machine, k6 included,
    // stalled ~100 ms. With "none at all", one such hiccup of the shared 2-core VM failed a step whose p99 was fine
    // (2026-11-26: view @3000/s 37 dropped of 66 000 at p99 41 ms; batch @1000/s 20 dropped at p99 38 ms).
    dropped_iterations: [`rate<=${RATE / 1000}`],
  },
};

function view() {
  cursor = (cursor + 1) % viewBodies.length;
  const headers = KEYS ? { ...jsonHeaders, "idempotency-key": `${KEY_PREFIX}-${exec.scenario.iterationInTest}` } : jsonHeaders;
  const p = { headers, tags: { kind: "write", phase: steady() } };
  const res = http.post(`${TARGET}/api/v1/products/view`, viewBodies[cursor], p);
  if (res.status === 202) acceptedViews.add(1);
}

function batch() {
  cursor = (cursor + 1) % batchBodies.length;
  const b = batchBodies[cursor];
  const res = http.post(`${TARGET}/api/v1/products/views`, b.body, {
    headers: jsonHeaders,
    tags: { kind: "write", phase: steady() },
  });
  if (res.status === 202) acceptedViews.add(b.views);
}

function top() {
  // TOP_QUERY: more of the query, e.g. "&window=24h".
  http.get(`${TARGET}/api/v1/products/top?limit=10${__ENV.TOP_QUERY || ""}`, { tags: { kind: "read", phase: steady() } });
}

export default function (data) {
  if (!built && SCENARIO !== "top") buildBodies(fileIds ?? data.ids);
  if (SCENARIO === "view") view();
  else if (SCENARIO === "batch") batch();
  else if (SCENARIO === "top") top();
  else if (SCENARIO === "mixed") (Math.random() < 0.9 ? view : top)();
  else throw new Error(`unknown SCENARIO ${SCENARIO}`);
}
