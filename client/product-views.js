// product-views browser client: record product views from a web page, batched, cheap, and safe to close.
// ESM, no dependencies. Usage:
//   import { createTracker } from "https://views.example.com/client/product-views.js";
//   const views = createTracker({ endpoint: "https://views.example.com" });
//   views.track("3f0c…-uuid");
//
// Views are buffered per product and sent to POST /api/v1/products/views every `flushIntervalMs` or as soon as
// `maxBatch` distinct products wait, as text/plain JSON with fetch(..., {keepalive: true}): a "simple" request,
// so the browser sends no CORS preflight. When the page is hidden or closed (pagehide / visibilitychange), what
// is left goes out with navigator.sendBeacon, which the browser delivers after the page is gone.
//
// Retries: a 503 whose body says {"written":"no"} was certainly not counted, so it is sent again after its
// Retry-After. A 503 "unknown", or a network error after the request left, may have been counted: it is not
// resent (a resend could count it twice) and is reported through onError instead.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PATH = "/api/v1/products/views";
/** Keepalive request bodies are limited to 64 KiB in total; ~70 bytes per item keeps one batch well below. */
const MAX_ITEMS = 500;
const MAX_COUNT = 1000;

/**
 * @param {import("./product-views").TrackerOptions} options
 * @returns {import("./product-views").Tracker}
 */
export function createTracker(options) {
  const endpoint = String(options.endpoint).replace(/\/+$/, "") + PATH;
  const flushIntervalMs = options.flushIntervalMs ?? 1000;
  const maxBatch = Math.min(options.maxBatch ?? 100, MAX_ITEMS);
  const maxRetries = options.maxRetries ?? 5;
  const onError = options.onError ?? ((e) => console.warn("product-views:", e.message));
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const nav = typeof navigator === "undefined" ? undefined : navigator;
  const beacon = nav && typeof nav.sendBeacon === "function" ? nav.sendBeacon.bind(nav) : null;

  /** @type {Map<string, number>} product id -> views not yet sent */
  let buffer = new Map();
  let timer = null;
  let inFlight = 0;
  const stats = { requests: 0, beacons: 0, sent: 0, failed: 0 };

  function take() {
    const items = [];
    for (const [product_id, count] of buffer) {
      // A product viewed more than the per-item limit in one window travels as several items.
      for (let left = count; left > 0; left -= MAX_COUNT) items.push({ product_id, count: Math.min(left, MAX_COUNT) });
    }
    buffer = new Map();
    const batches = [];
    for (let i = 0; i < items.length; i += MAX_ITEMS) batches.push(items.slice(i, i + MAX_ITEMS));
    return batches;
  }

  async function send(views, attempt) {
    stats.requests++;
    inFlight++;
    let res;
    try {
      res = await doFetch(endpoint, {
        method: "POST",
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
        body: JSON.stringify({ views }),
        keepalive: true,
        mode: "cors",
        credentials: "omit",
      });
    } catch (err) {
      stats.failed += total(views);
      onError(new Error(`views not confirmed (network error; not resent, it may have been counted): ${err}`));
      return;
    } finally {
      inFlight--;
    }
    if (res.status === 202) {
      stats.sent += total(views);
      return;
    }
    const body = await res.json().catch(() => ({}));
    if (res.status === 503 && body.written === "no" && attempt < maxRetries) {
      const after = Number(res.headers.get("retry-after"));
      const waitMs = (Number.isFinite(after) && after > 0 ? after * 1000 : 1000) * 2 ** attempt;
      setTimeout(() => void send(views, attempt + 1), Math.min(waitMs, 60_000));
      return;
    }
    stats.failed += total(views);
    onError(new Error(`views refused: ${res.status} ${body.code ?? ""} ${body.error ?? ""}`.trim()));
  }

  function flush() {
    clearTimeout(timer);
    timer = null;
    return Promise.all(take().map((views) => send(views, 0))).then(() => undefined);
  }

  /** The page is going away: hand what is left to the browser, which sends it after the page is gone. */
  function flushOnExit() {
    clearTimeout(timer);
    timer = null;
    for (const views of take()) {
      // A string body makes the beacon text/plain: no preflight, and the API reads it as JSON.
      if (beacon?.(endpoint, JSON.stringify({ views }))) {
        stats.beacons++;
        stats.sent += total(views);
      } else void send(views, 0);
    }
  }

  function track(productId, count = 1) {
    if (typeof productId !== "string" || !UUID.test(productId)) {
      onError(new Error(`not a product id (UUID): ${productId}`));
      return false;
    }
    const id = productId.toLowerCase();
    buffer.set(id, (buffer.get(id) ?? 0) + Math.max(1, Math.floor(count)));
    if (buffer.size >= maxBatch) void flush();
    else timer ??= setTimeout(() => void flush(), flushIntervalMs);
    return true;
  }

  if (typeof addEventListener === "function") {
    addEventListener("pagehide", flushOnExit);
    addEventListener("visibilitychange", () => {
      if (typeof document !== "undefined" && document.visibilityState === "hidden") flushOnExit();
    });
  }

  return {
    track,
    flush,
    pending: () => total([...buffer].map(([product_id, count]) => ({ product_id, count }))),
    inFlight: () => inFlight,
    stats: () => ({ ...stats }),
  };
}

function total(views) {
  let n = 0;
  for (const v of views) n += v.count;
  return n;
}
