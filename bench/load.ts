// The ingest ladders' load generator (POST /view and POST /views, and the bare server's ladder): an open model like
// k6's ramping-arrival-rate (bench/k6/load.js), on raw keep-alive sockets. Why not k6: it spent ~350 µs of CPU per
// 100-view request and ~180 µs per single view, 1-1.3 of the two cores at 5 000-8 000 views/s, so its steps measured
// k6 (bench/RESULTS.md, the runs of 2026-12-06 (a2e9931) and 2026-12-07 (798e7a3)). This costs ~10-25 µs per request, and like k6 it waits for every
// request it sent, so the views that got 202 are known exactly.
//
//   RATE=3000 DURATION=15s TARGET=http://127.0.0.1:8080 ROUTE=/api/v1/products/views BODIES=<dir> BODY_FILES=250 \
//     bun bench/load.ts
// BODIES holds files 0.txt, 1.txt ... of request bodies, one JSON body per line, sent in turn; a body's views are
// its `views` array's counts, or its own `count` (default 1). Prints one JSON line: the fields bench/run.ts reads
// from a k6 summary.
import type { Socket } from "bun";

const RATE = Number(process.env.RATE ?? 1000);
const DURATION_S = Number.parseFloat(process.env.DURATION ?? "15s");
const RAMP_S = Number(process.env.RAMP_S ?? 2);
const P99_MS = Number(process.env.P99 ?? 50);
const BODIES = process.env.BODIES ?? "";
const BODY_FILES = Number(process.env.BODY_FILES ?? 1);
const ROUTE = process.env.ROUTE ?? "/api/v1/products/views";
const target = new URL(process.env.TARGET ?? "http://127.0.0.1:8080");
// k6's VUs: a tenth of the rate connected up front, more opened when all are busy, up to MAX_CONNS.
const PREOPEN = Math.min(Math.max(100, Math.ceil(RATE / 10)), 1500);
const MAX_CONNS = 2000;
// What k6's gracefulStop gives iterations still running when the step ends.
const DRAIN_MS = 30_000;

type Body = { bytes: Uint8Array; views: number };
type Conn = {
  socket: Socket<Conn> | null;
  busy: boolean;
  scheduledAt: number;
  steady: boolean;
  views: number;
  head: string;
  /** Bytes of the response still expected after its head; -1 until the head is complete. */
  rest: number;
  unsent: Uint8Array | null;
};

// The bench is a trusted integration (counts above 1, one address): the ingest token `make up` made, also sent to
// the bare server so both sides carry the same bytes.
const AUTH = process.env.INGEST_TOKEN ? `Authorization: Bearer ${process.env.INGEST_TOKEN}\r\n` : "";
// PUBLIC=1: the public path instead, each body from a viewer of its own, as a proxy in TRUSTED_PROXIES reports it (a
// browser's User-Agent, an X-Forwarded-For address per body): 100 000 distinct viewers, none repeating within a step.
const PUBLIC = process.env.PUBLIC === "1";
const BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
// PUBLIC_OFFSET: where this step's viewers start, so that a later step's are new viewers too (not repeats).
const OFFSET = Number(process.env.PUBLIC_OFFSET ?? 0);
const address = (n: number) => `${10 + ((n >>> 24) & 15)}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
const who = (i: number) => (PUBLIC ? `User-Agent: ${BROWSER}\r\nX-Forwarded-For: ${address(i + OFFSET)}\r\n` : AUTH);

function loadBodies(): Body[] {
  const out: Body[] = [];
  const enc = new TextEncoder();
  for (let f = 0; f < BODY_FILES; f++) {
    for (const line of require("node:fs").readFileSync(`${BODIES}/${f}.txt`, "utf8").split("\n") as string[]) {
      if (line === "") continue;
      const body = JSON.parse(line) as { views?: { count?: number }[]; count?: number };
      const views = body.views ? body.views.reduce((n, v) => n + (v.count ?? 1), 0) : (body.count ?? 1);
      const head = `POST ${ROUTE} HTTP/1.1\r\nHost: ${target.host}\r\n${who(out.length)}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(line)}\r\n\r\n`;
      out.push({ bytes: enc.encode(head + line), views });
    }
  }
  if (out.length === 0) throw new Error(`no bodies under ${BODIES}`);
  return out;
}

const bodies = loadBodies();
const conns: Conn[] = [];
// Idle connections, oldest first: each is reused in turn, so none sits idle past the server's idle timeout. Taking
// the newest first left the oldest idle for the whole step; Bun closes a keep-alive connection after 10 s idle, and
// the requests written as it did failed (169 of 88 800 at 8 000 views/s against the bare server).
const idle: Conn[] = [];
let idleHead = 0;
function takeIdle(): Conn | undefined {
  while (idleHead < idle.length) {
    const c = idle[idleHead++]!;
    if (idleHead > 4096 && idleHead * 2 > idle.length) {
      idle.splice(0, idleHead);
      idleHead = 0;
    }
    if (c.socket) return c;
  }
  return undefined;
}
const steadyLatencies: number[] = [];
let sent = 0;
let ok = 0;
let failed = 0;
let dropped = 0;
let steadyReqs = 0;
let acceptedViews = 0;
let inFlight = 0;
const statuses: Record<string, number> = {};
let cursor = Math.floor(Math.random() * bodies.length);
let t0 = 0;

function finish(c: Conn, status: number) {
  const ms = performance.now() - c.scheduledAt;
  statuses[status] = (statuses[status] ?? 0) + 1;
  if (status === 202) {
    ok++;
    acceptedViews += c.views;
  } else failed++;
  if (c.steady) {
    steadyReqs++;
    steadyLatencies.push(ms);
  }
  c.busy = false;
  c.head = "";
  c.rest = -1;
  inFlight--;
  if (c.socket) idle.push(c);
}

function statusOf(head: string): number {
  return Number(head.slice(9, 12));
}

function onData(c: Conn, data: Buffer) {
  if (!c.busy) return;
  if (c.rest < 0) {
    c.head += data.toString("latin1");
    const end = c.head.indexOf("\r\n\r\n");
    if (end < 0) return;
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(c.head.slice(0, end));
    c.rest = (m ? Number(m[1]) : 0) - (c.head.length - end - 4);
  } else c.rest -= data.length;
  if (c.rest <= 0) finish(c, statusOf(c.head));
}

function write(c: Conn) {
  const s = c.socket;
  if (!s || !c.unsent) return;
  const n = s.write(c.unsent);
  c.unsent = n >= c.unsent.length ? null : c.unsent.subarray(Math.max(n, 0));
}

function lost(c: Conn) {
  c.socket = null;
  if (c.busy) finish(c, 0);
}

async function open(): Promise<Conn> {
  const c: Conn = { socket: null, busy: false, scheduledAt: 0, steady: false, views: 0, head: "", rest: -1, unsent: null };
  conns.push(c);
  c.socket = await Bun.connect<Conn>({
    hostname: target.hostname,
    port: Number(target.port || 80),
    data: c,
    socket: {
      data: (s, d) => onData(s.data, d),
      drain: (s) => write(s.data),
      close: (s) => lost(s.data),
      error: (s) => lost(s.data),
    },
  });
  c.socket.setNoDelay(true);
  return c;
}

function send(c: Conn, scheduledAt: number, steady: boolean) {
  const b = bodies[cursor]!;
  cursor = (cursor + 1) % bodies.length;
  c.busy = true;
  c.scheduledAt = scheduledAt;
  c.steady = steady;
  c.views = b.views;
  c.unsent = b.bytes;
  inFlight++;
  write(c);
}

/** Requests due by `s` seconds in: a linear ramp from a tenth of the rate over RAMP_S, then the rate. */
function dueBy(s: number): number {
  const r0 = RATE / 10;
  if (s <= RAMP_S) return Math.floor(r0 * s + ((RATE - r0) * s * s) / (2 * RAMP_S));
  return Math.floor(r0 * RAMP_S + ((RATE - r0) * RAMP_S) / 2 + RATE * Math.min(s - RAMP_S, DURATION_S));
}

for (let i = 0; i < PREOPEN; i++) idle.push(await open());
const cpu0 = process.cpuUsage();
t0 = performance.now();
const total = dueBy(RAMP_S + DURATION_S);
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = performance.now();
    const s = (now - t0) / 1000;
    const due = Math.min(total, dueBy(s));
    const steady = s >= RAMP_S;
    for (; sent < due; sent++) {
      const c = takeIdle();
      if (c) send(c, now, steady);
      else if (conns.length < MAX_CONNS) {
        // Like k6 allocating a VU: the request waits for its connection, and its latency shows it.
        inFlight++;
        open().then(
          (nc) => {
            inFlight--;
            send(nc, now, steady);
          },
          () => {
            inFlight--;
            failed++;
          },
        );
      } else dropped++;
    }
    if (sent < total) setTimeout(tick, 1);
    else resolve();
  };
  tick();
});
const drainEnd = performance.now() + DRAIN_MS;
while (inFlight > 0 && performance.now() < drainEnd) await Bun.sleep(5);
const unfinished = inFlight;
const cpu = process.cpuUsage(cpu0);
for (const c of conns) c.socket?.end();

steadyLatencies.sort((a, b) => a - b);
const q = (p: number) => steadyLatencies[Math.min(steadyLatencies.length - 1, Math.floor(steadyLatencies.length * p))] ?? 0;
const attempted = ok + failed + unfinished;
const failedRate = attempted > 0 ? (failed + unfinished) / attempted : 0;
const p99 = q(0.99);
console.log(
  JSON.stringify({
    passed: failedRate < 0.001 && dropped <= (total * 1) / 1000 && p99 < P99_MS && unfinished === 0,
    reqs: steadyReqs,
    failedRate,
    dropped,
    p50: q(0.5),
    p95: q(0.95),
    p99,
    acceptedViews,
    unfinished,
    statuses,
    connections: conns.length,
    cpuUsPerRequest: attempted > 0 ? (cpu.user + cpu.system) / attempted : 0,
  }),
);
process.exit(0);
