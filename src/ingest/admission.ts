import type { TrustConfig } from "../config.ts";
import { canonicalId } from "../domain/view.ts";
import type { ViewEvent } from "../domain/view.ts";
import { AppError } from "../errors.ts";
import type { Counter, Registry } from "../metrics.ts";
import { isbot } from "isbot";
import { createRateLimiter } from "./rate-limit.ts";
import { createRepeatMemory, pairKey } from "./repeats.ts";
import type { Viewer, ViewerOf } from "./viewer.ts";

// The rules a public caller's views pass before they are counted (README "What counts as a view"): one view per
// product per item, batches a page could send, no bots, per-viewer and per-address rates, and a viewer's repeat
// view of a product within the repeat window not counted again. Trusted integrations (INGEST_TOKEN) skip them.

export type Caller = { kind: "trusted" } | { kind: "public"; address: string; userAgent: string };

export type IgnoredReason = "repeat" | "bot";

export type Admission =
  /** These views count; `ignored` of the request's did not (repeats); `undo` if they are refused after all. */
  | { kind: "count"; events: ViewEvent[]; viewer: Viewer; ignored: number; undo(): void }
  /** Nothing counts, for one reason: answered 200, not 202. */
  | { kind: "ignored"; reason: IgnoredReason; views: number };

export interface PublicItem {
  product_id: string;
  count?: number;
}

export type Admit = (caller: Extract<Caller, { kind: "public" }>, items: readonly PublicItem[], nowMs?: number) => Admission;

/** IPv6 clients get a /64 each from their provider: the address limit holds per /64, not per address. */
export function addressKey(address: string): string {
  if (!address.includes(":")) return address;
  const full = address.includes("::") ? expand(address) : address.split(":");
  return `${full.slice(0, 4).join(":")}::/64`;
}

function expand(address: string): string[] {
  const [left, right] = address.split("::") as [string, string];
  const l = left === "" ? [] : left.split(":");
  const r = right === "" ? [] : right.split(":");
  return [...l, ...new Array(8 - l.length - r.length).fill("0"), ...r];
}

/** What a page could send: a batch of at most PUBLIC_MAX_BATCH_ITEMS, each counting 1; more needs a token (403). */
function checkShape(items: readonly PublicItem[], trust: TrustConfig, refused: Counter) {
  if (items.length > trust.publicMaxBatchItems) {
    refused.inc({ reason: "token_required" });
    throw new AppError(
      "ingest_token_required",
      `a public batch holds at most ${trust.publicMaxBatchItems} items; larger batches need an ingest token (Authorization: Bearer)`,
    );
  }
  if (items.some((i) => i.count !== undefined && i.count !== 1)) {
    refused.inc({ reason: "token_required" });
    throw new AppError("ingest_token_required", "a public view counts 1; counts above 1 need an ingest token (Authorization: Bearer)");
  }
}

/** isbot runs a large regular expression (~4 µs a User-Agent); a page's visitors share a few hundred of them. */
function botCache() {
  const bots = new Map<string, boolean>();
  return (ua: string) => {
    let bot = bots.get(ua);
    if (bot === undefined) {
      if (bots.size >= 10_000) bots.clear();
      bot = isbot(ua);
      bots.set(ua, bot);
    }
    return bot;
  };
}

export function createAdmission(trust: TrustConfig, viewerOf: ViewerOf, metrics: Registry): Admit {
  const ignoredViews = metrics.counter("views_ignored_total", "Public views answered 200 and not counted, by reason (repeat, bot)");
  const refused = metrics.counter(
    "view_requests_refused_total",
    "Public view requests refused before counting, by reason (rate_limited_viewer, rate_limited_address, token_required)",
  );
  const repeats = trust.repeatWindowMs > 0 ? createRepeatMemory({ windowMs: trust.repeatWindowMs, capacity: trust.repeatMemory }) : null;
  const byViewer = createRateLimiter({ burst: trust.viewerBurst, perS: trust.viewerPerS, capacity: trust.rateMemory });
  const byAddress = createRateLimiter({ burst: trust.addressBurst, perS: trust.addressPerS, capacity: trust.rateMemory });
  metrics.gauge("view_repeat_memory_pairs", "(viewer, product) pairs held to recognise repeats", () => repeats?.size ?? 0);

  function limit(caller: Extract<Caller, { kind: "public" }>, viewer: Viewer, n: number, nowMs: number) {
    const wait = byAddress.take(addressKey(caller.address), n, nowMs);
    const which = wait > 0 ? "address" : "viewer";
    const waitViewer = wait > 0 ? 0 : byViewer.take(`${viewer.hi}:${viewer.lo}`, n, nowMs);
    if (wait === 0 && waitViewer === 0) return;
    refused.inc({ reason: `rate_limited_${which}` });
    throw new AppError("rate_limited", `too many views from this ${which}; retry after the time Retry-After gives`, {
      retryAfterS: Math.max(wait, waitViewer),
      details: { limit: which },
    });
  }

  const isBot = botCache();

  return (caller, items, nowMs = Date.now()) => {
    checkShape(items, trust, refused);
    if (trust.botFilter && caller.userAgent !== "" && isBot(caller.userAgent)) {
      ignoredViews.inc({ reason: "bot" }, items.length);
      return { kind: "ignored", reason: "bot", views: items.length };
    }
    const viewer = viewerOf(caller.address, caller.userAgent, nowMs);
    limit(caller, viewer, items.length, nowMs);
    const viewerId = viewer.id.toString();
    const events: ViewEvent[] = [];
    const marked: number[] = [];
    const seen = new Set<string>();
    for (const item of items) {
      const id = canonicalId(item.product_id);
      if (seen.has(id)) continue;
      seen.add(id);
      if (repeats !== null) {
        const pair = pairKey(viewer.id, id);
        if (repeats.check(pair, nowMs)) continue;
        marked.push(pair);
      }
      events.push({ product_id: id, count: 1, viewers: [viewerId] });
    }
    const ignored = items.length - events.length;
    if (ignored > 0) ignoredViews.inc({ reason: "repeat" }, ignored);
    if (events.length === 0) return { kind: "ignored", reason: "repeat", views: items.length };
    const undo = () => {
      for (const pair of marked) repeats?.forget(pair, nowMs);
    };
    return { kind: "count", events, viewer, ignored, undo };
  };
}
