// product-views browser client: record product views from a web page, batched, cheap, and safe to close.
// ESM, no dependencies. Usage:
//   import { createTracker } from "https://views.example.com/client/product-views.js";
//   const views = createTracker({ endpoint: "https://views.example.com" });
//   views.track("3f0c…-uuid");
//
// A page is a public caller (README "What counts as a view"): one view per product per item, at most 100 items a
// request, and a viewer's repeat view of a product within the API's repeat window is not counted again. So the
// client sends each product viewed since the last send once, in batches of at most `maxBatch`, to POST
// /api/v1/products/views every `flushIntervalMs`, as text/plain JSON with fetch(..., {keepalive: true}): a
// "simple" request, so the browser sends no CORS preflight. When the page is hidden or closed (pagehide /
// visibilitychange), what is left, retries waiting included, goes out with navigator.sendBeacon, which the
// browser delivers after the page is gone.
//
// What it got is in stats(): counted (202), ignored (200: repeats, or a bot's User-Agent), failed. A 503 whose body
// says {"written":"no"}, and a 429, were certainly not counted: sent again after Retry-After. A 404 for unknown
// products counted nothing: the other products are sent again. A 503 "unknown", or a network error after the
// request left, may have been counted: not resent (a resend could count twice), reported through onError.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PATH = "/api/v1/products/views";
/** The API's public batch limit (PUBLIC_MAX_BATCH_ITEMS, default 100). */
const MAX_ITEMS = 100;
/**
 * Browsers refuse a keepalive request once the keepalive bodies in flight pass 64 KiB: a send that would pass
 * this budget goes without keepalive (it is lost only if the page closes before the answer).
 */
const KEEPALIVE_BUDGET = 60 * 1024;

/**
 * @param {import("./product-views").TrackerOptions} options
 * @returns {import("./product-views").Tracker}
 */
export function createTracker(options) {
  const endpoint = String(options.endpoint).replace(/\/+$/, "") + PATH;
  const flushIntervalMs = options.flushIntervalMs ?? 1000;
  const maxBatch = Math.max(1, Math.min(options.maxBatch ?? MAX_ITEMS, MAX_ITEMS));
  const maxRetries = options.maxRetries ?? 5;
  const onError = options.onError ?? ((e) => console.warn("product-views:", e.message));
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const nav = typeof navigator === "undefined" ? undefined : navigator;
  const beacon = nav && typeof nav.sendBeacon === "function" ? nav.sendBeacon.bind(nav) : null;

  /** @type {Set<string>} products viewed, not yet sent */
  let buffer = new Set();
  let timer = null;
  let inFlight = 0;
  let keepaliveBytes = 0;
  /** @type {Map<ReturnType<typeof setTimeout>, string[]>} retries waiting for their time */
  const retries = new Map();
  const stats = { requests: 0, beacons: 0, sent: 0, counted: 0, ignored: 0, failed: 0 };

  function take() {
    const ids = [...buffer];
    buffer = new Set();
    const batches = [];
    for (let i = 0; i < ids.length; i += maxBatch) batches.push(ids.slice(i, i + maxBatch));
    return batches;
  }

  function retryLater(ids, res, attempt) {
    const after = Number(res.headers.get("retry-after"));
    const waitMs = Math.min((Number.isFinite(after) && after > 0 ? after * 1000 : 1000) * 2 ** attempt, 60_000);
    const t = setTimeout(() => {
      retries.delete(t);
      void send(ids, attempt + 1);
    }, waitMs);
    retries.set(t, ids);
  }

  async function send(ids, attempt) {
    const body = JSON.stringify({ views: ids.map((product_id) => ({ product_id })) });
    const keepalive = keepaliveBytes + body.length <= KEEPALIVE_BUDGET;
    if (keepalive) keepaliveBytes += body.length;
    stats.requests++;
    inFlight++;
    let res;
    try {
      res = await doFetch(endpoint, {
        method: "POST",
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
        body,
        keepalive,
        mode: "cors",
        credentials: "omit",
      });
    } catch (err) {
      stats.failed += ids.length;
      onError(new Error(`views not confirmed (network error; not resent, they may have been counted): ${err}`));
      inFlight--;
      return;
    } finally {
      // The body is gone once the answer's headers came: the keepalive budget is free again.
      if (keepalive) keepaliveBytes -= body.length;
    }
    // In flight until its answer is read and in stats (or handed to a retry, which pending() counts).
    try {
      answered(ids, res, await res.json().catch(() => ({})), attempt);
    } finally {
      inFlight--;
    }
  }

  function answered(ids, res, answer, attempt) {
    if (res.status === 202 || res.status === 200) {
      const counted = res.status === 202 ? (answer.accepted ?? ids.length) : 0;
      stats.counted += counted;
      stats.sent += counted;
      stats.ignored += ids.length - counted;
      return;
    }
    const retryable = res.status === 429 || (res.status === 503 && answer.written === "no");
    if (retryable && attempt < maxRetries) return retryLater(ids, res, attempt);
    if (res.status === 404 && Array.isArray(answer.unknown_ids) && attempt < maxRetries) {
      const unknown = new Set(answer.unknown_ids.map((id) => String(id).toLowerCase()));
      const rest = ids.filter((id) => !unknown.has(id));
      stats.failed += ids.length - rest.length;
      onError(new Error(`unknown products, not counted: ${[...unknown].join(", ")}`));
      if (rest.length > 0) void send(rest, attempt + 1);
      return;
    }
    stats.failed += ids.length;
    onError(new Error(`views refused: ${res.status} ${answer.code ?? ""} ${answer.error ?? ""}`.trim()));
  }

  function flush() {
    clearTimeout(timer);
    timer = null;
    return Promise.all(take().map((ids) => send(ids, 0))).then(() => undefined);
  }

  /** The page is going away: hand what is left (retries too) to the browser, which sends it after the page is gone. */
  function flushOnExit() {
    clearTimeout(timer);
    timer = null;
    const batches = take();
    for (const [t, ids] of retries) {
      clearTimeout(t);
      batches.push(ids);
    }
    retries.clear();
    for (const ids of batches) {
      // A string body makes the beacon text/plain: no preflight, and the API reads it as JSON.
      if (beacon?.(endpoint, JSON.stringify({ views: ids.map((product_id) => ({ product_id })) }))) {
        stats.beacons++;
        stats.sent += ids.length;
      } else void send(ids, 0);
    }
  }

  /** One view of a product (the API counts a viewer's views of a product once per repeat window). */
  function track(productId) {
    if (typeof productId !== "string" || !UUID.test(productId)) {
      onError(new Error(`not a product id (UUID): ${productId}`));
      return false;
    }
    buffer.add(productId.toLowerCase());
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
    pending: () => buffer.size + [...retries.values()].reduce((n, ids) => n + ids.length, 0),
    inFlight: () => inFlight,
    stats: () => ({ ...stats }),
  };
}
