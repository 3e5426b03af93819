// One k6 script for every scenario (open model: constant-arrival-rate). Env:
//   SCENARIO = view | batch | top | mixed     TARGET = http://127.0.0.1:8080     RATE = iterations/s
//   DURATION = 20s   IDS = path of a JSON array of product ids   P99_MS = 50
import http from "k6/http";
import { Counter } from "k6/metrics";
import { SharedArray } from "k6/data";

const SCENARIO = __ENV.SCENARIO || "view";
const TARGET = __ENV.TARGET || "http://127.0.0.1:8080";
const RATE = Number(__ENV.RATE || 1000);
const DURATION = __ENV.DURATION || "20s";
const P99 = Number(__ENV.P99_MS || 50);
const BATCH = Number(__ENV.BATCH || 100);

const ids = new SharedArray("ids", () => JSON.parse(open(__ENV.IDS)));
const acceptedViews = new Counter("accepted_views");

// Zipf-like ranks with s = 1.1 by inverting the continuous power law: O(1), no table per VU.
const S = 1.1;
const N = ids.length;
const A = N ** (1 - S) - 1;
function zipfId() {
  const r = (A * Math.random() + 1) ** (1 / (1 - S));
  return ids[Math.min(N - 1, Math.floor(r) - 1)];
}

// Request bodies are built once per VU in the init stage: goja is slow at building JSON, and on a 2-core machine
// every CPU cycle k6 spends is taken from the system under test. Each body still draws its ids from the Zipf law.
const POOL = Number(__ENV.POOL || 100);
const viewBodies = [];
const batchBodies = [];
if (SCENARIO === "view" || SCENARIO === "mixed") {
  for (let i = 0; i < POOL; i++) viewBodies.push(JSON.stringify({ product_id: zipfId() }));
}
if (SCENARIO === "batch") {
  for (let i = 0; i < 200; i++) {
    const views = [];
    for (let j = 0; j < BATCH; j++) views.push({ product_id: zipfId() });
    batchBodies.push(JSON.stringify({ views }));
  }
}
let cursor = Math.floor(Math.random() * POOL);

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
  const res = http.post(`${TARGET}/api/v1/products/view`, viewBodies[cursor], params);
  if (res.status === 202) acceptedViews.add(1);
}

function batch() {
  cursor = (cursor + 1) % batchBodies.length;
  const res = http.post(`${TARGET}/api/v1/products/views`, batchBodies[cursor], params);
  if (res.status === 202) acceptedViews.add(BATCH);
}

function top() {
  http.get(`${TARGET}/api/v1/products/top?limit=10`, { tags: { kind: "read" } });
}

export default function () {
  if (SCENARIO === "view") view();
  else if (SCENARIO === "batch") batch();
  else if (SCENARIO === "top") top();
  else if (SCENARIO === "mixed") (Math.random() < 0.9 ? view : top)();
  else throw new Error(`unknown SCENARIO ${SCENARIO}`);
}
