// Load the tests send (steady, retrying, bulk) over the bench's Zipf law (bench/k6/zipf.js), and the verdict line each fault prints.
import { post } from "./http.ts";
import { bounded } from "./wait.ts";
import { zipfOf } from "../../../bench/k6/zipf.js";

/**
 * Publishes `total` views (Zipf over `ids`) through the project's producer, `perBatch` at a time, and returns how
 * many views each product got acknowledged: the ground truth the counts must reach exactly.
 */
export async function publishViews(
  publish: (events: { product_id: string; count: number }[]) => Promise<void>,
  ids: readonly string[],
  total: number,
  opts: { perCall?: number; concurrency?: number; paceMs?: number } = {},
): Promise<Map<string, number>> {
  const pick = zipfOf(ids);
  const acked = new Map<string, number>();
  const perCall = opts.perCall ?? 10;
  let sent = 0;
  async function lane() {
    while (sent < total) {
      const n = Math.min(perCall, total - sent);
      sent += n;
      const events = Array.from({ length: n }, () => ({ product_id: pick(), count: 1 }));
      await publish(events);
      for (const e of events) acked.set(e.product_id, (acked.get(e.product_id) ?? 0) + 1);
      if (opts.paceMs) await Bun.sleep(opts.paceMs);
    }
  }
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, lane));
  return acked;
}

export interface LoadStats {
  sent: number;
  accepted: Map<string, number>;
  acceptedTotal: number;
  unavailable: number;
  /** 503s whose body said written: "unknown", per product (they may be counted). */
  unknown: Map<string, number>;
  unknownTotal: number;
  otherStatus: Map<number, number>;
  connectionErrors: number;
  maxLatencyMs: number;
}

/**
 * A steady HTTP load generator: `concurrency` loops posting single views (Zipf over `ids`) to `url`,
 * each pausing `paceMs` between requests, until stop() is called. Counts what every answer was.
 */
export function steadyLoad(url: () => string, ids: readonly string[], opts: { concurrency?: number; paceMs?: number } = {}) {
  const pick = zipfOf(ids);
  const stats: LoadStats = {
    sent: 0,
    accepted: new Map(),
    acceptedTotal: 0,
    unavailable: 0,
    unknown: new Map(),
    unknownTotal: 0,
    otherStatus: new Map(),
    connectionErrors: 0,
    maxLatencyMs: 0,
  };
  let running = true;
  async function loop() {
    while (running) {
      const id = pick();
      stats.sent++;
      const t0 = performance.now();
      try {
        const res = await post(`${url()}/api/v1/products/view`, { product_id: id });
        const body = await res.text();
        stats.maxLatencyMs = Math.max(stats.maxLatencyMs, performance.now() - t0);
        if (res.status === 202) {
          stats.accepted.set(id, (stats.accepted.get(id) ?? 0) + 1);
          stats.acceptedTotal++;
        } else if (res.status === 503) {
          stats.unavailable++;
          if ((JSON.parse(body) as { written?: string }).written !== "no") {
            stats.unknown.set(id, (stats.unknown.get(id) ?? 0) + 1);
            stats.unknownTotal++;
          }
        } else stats.otherStatus.set(res.status, (stats.otherStatus.get(res.status) ?? 0) + 1);
      } catch {
        stats.connectionErrors++;
        await Bun.sleep(50);
      }
      if (opts.paceMs) await Bun.sleep(opts.paceMs);
    }
  }
  const loops = Array.from({ length: opts.concurrency ?? 8 }, loop);
  return {
    stats,
    async stop(): Promise<LoadStats> {
      running = false;
      await Promise.all(loops);
      return stats;
    },
  };
}

export interface RetryStats {
  /** Distinct keys that got 202 in the end, per product: what the counts must grow by. */
  accepted: Map<string, number>;
  acceptedKeys: number;
  /** Keys given up after `giveUpMs` of retries (their views may or may not be counted). */
  gaveUp: number;
  attempts: number;
  status503: number;
  status409: number;
  connectionErrors: number;
  /** Other answers (400, 404, 422, 500...): none is expected. */
  otherStatus: Map<number, number>;
  /** Longest time from a key's first attempt to its 202. */
  maxAcceptMs: number;
}

/**
 * A client as retrying integrations behave: `concurrency` loops, each sending one view (Zipf over `ids`) under a fresh
 * Idempotency-Key and retrying it, with the same key, after every 503, 409 and connection error until it gets
 * 202 (or `giveUpMs` passed). stop() ends the loops after their current key is settled.
 */
export function retryingLoad(
  url: () => string,
  ids: readonly string[],
  opts: { concurrency?: number; paceMs?: number; giveUpMs?: number } = {},
) {
  const pick = zipfOf(ids);
  const giveUpMs = opts.giveUpMs ?? 90_000;
  const stats: RetryStats = {
    accepted: new Map(),
    acceptedKeys: 0,
    gaveUp: 0,
    attempts: 0,
    status503: 0,
    status409: 0,
    connectionErrors: 0,
    otherStatus: new Map(),
    maxAcceptMs: 0,
  };
  let running = true;
  async function one(id: string) {
    const key = crypto.randomUUID();
    const t0 = performance.now();
    for (let attempt = 0; performance.now() - t0 < giveUpMs; attempt++) {
      stats.attempts++;
      try {
        const res = await post(`${url()}/api/v1/products/view`, { product_id: id }, { "idempotency-key": key });
        await res.arrayBuffer();
        if (res.status === 202) {
          stats.accepted.set(id, (stats.accepted.get(id) ?? 0) + 1);
          stats.acceptedKeys++;
          stats.maxAcceptMs = Math.max(stats.maxAcceptMs, performance.now() - t0);
          return;
        }
        if (res.status === 503) stats.status503++;
        else if (res.status === 409) stats.status409++;
        else {
          stats.otherStatus.set(res.status, (stats.otherStatus.get(res.status) ?? 0) + 1);
          return;
        }
      } catch {
        stats.connectionErrors++;
      }
      await Bun.sleep(Math.min(50 * 2 ** attempt, 1000));
    }
    stats.gaveUp++;
  }
  async function loop() {
    while (running) {
      await one(pick());
      if (opts.paceMs) await Bun.sleep(opts.paceMs);
    }
  }
  const loops = Array.from({ length: opts.concurrency ?? 8 }, loop);
  return {
    stats,
    async stop(): Promise<RetryStats> {
      running = false;
      await bounded("the retrying client's last keys", Promise.all(loops), giveUpMs + 20_000);
      return stats;
    },
  };
}

export function verdict(name: string, fields: Record<string, unknown>) {
  console.log(
    `verdict ${name}: ${Object.entries(fields)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}`,
  );
}
