import { Type, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";

// One schema serves the HTTP body, the Kafka payload and the TypeScript type of a view.

/** Canonical UUID text: case-insensitive on input, normalised to lower case before it becomes a Kafka key. */
export const Uuid = Type.String({
  pattern: "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
  description: "Product id (UUID)",
  example: "3f2b8c1e-6d7a-4e1b-9c3d-2a1f0e9b8c7d",
});

/** A product id as every key, message and query holds it: lower-case (a UUID's hex compares case-insensitively). */
export const canonicalId = (id: string) => id.toLowerCase();

export const MAX_VIEWS_PER_ITEM = 1000;
export const MAX_BATCH_ITEMS = 1000;

// Request bodies ignore properties they do not name, and say so: clients of the original service send extra
// fields (a timestamp, a page) and must not start failing; the document must not promise a 400 either.
export const IGNORES_UNKNOWN = { additionalProperties: true } as const;

export const ViewRequest = Type.Object(
  { product_id: Uuid },
  { description: "One product view; other properties are ignored", ...IGNORES_UNKNOWN },
);
export type ViewRequest = Static<typeof ViewRequest>;

export const BatchViewItem = Type.Object(
  {
    product_id: Uuid,
    count: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_VIEWS_PER_ITEM, default: 1 })),
  },
  IGNORES_UNKNOWN,
);
export const BatchViewRequest = Type.Object(
  {
    views: Type.Array(BatchViewItem, { minItems: 1, maxItems: MAX_BATCH_ITEMS }),
  },
  IGNORES_UNKNOWN,
);
export type BatchViewRequest = Static<typeof BatchViewRequest>;

/**
 * Largest number of distinct products in one Kafka message. The producer merges the requests of one window
 * into one message (ingest/lane-batch.ts), so a message can hold several full batch requests: the decoder below
 * must take everything the producer can build (a test builds the largest one).
 */
export const MAX_MESSAGE_ITEMS = 4000;
/** A product's views in one message: summed over the window's requests, so not bounded by one request's. */
export const MAX_EVENT_COUNT = 1e15;
/**
 * Views in one message, all products together. An API's message is far below (its in-flight bound is 100 000
 * items of at most 1 000 views); the bound keeps every sum the worker holds exact (below 2^53) for thousands of
 * messages, and one message that claims more is dead-lettered instead of counted.
 */
export const MAX_MESSAGE_VIEWS = 1e12;

/** A public viewer (ingest/viewer.ts): 64 bits of its daily hash, as a signed decimal (a Postgres bigint). */
export const ViewerId = Type.String({ pattern: "^-?[0-9]{1,19}$" });

/**
 * A product's views, as they travel through Kafka (in a ViewGroup). `viewers`: who the public views among them
 * were from, one entry a view (the worker folds them into the product's unique-viewer sketch); trusted views
 * carry none.
 */
export const ViewEvent = Type.Object({
  product_id: Uuid,
  count: Type.Integer({ minimum: 1, maximum: MAX_EVENT_COUNT }),
  viewers: Type.Optional(Type.Array(ViewerId, { maxItems: MAX_MESSAGE_ITEMS })),
});
export type ViewEvent = Static<typeof ViewEvent>;

/** The (product, viewer) pairs that `events` carry. */
export function viewerCount(events: readonly ViewEvent[]): number {
  let n = 0;
  for (const e of events) n += e.viewers?.length ?? 0;
  return n;
}

/** An acceptance time: epoch milliseconds, within what a JavaScript Date can hold. */
const AcceptedAt = Type.Integer({ minimum: 0, maximum: 8.64e15 });

/**
 * A request sent with an Idempotency-Key travels apart from the merged counts: the worker counts it only if
 * its key was not counted within the window (db: view_keys). `key` and `fp` are MD5 digests in hex (32
 * characters): of the client's key, and of the request's canonical views (a repeat with another body is seen).
 */
export const KeyedViews = Type.Object({
  key: Type.String({ pattern: "^[0-9a-f]{32}$" }),
  fp: Type.String({ pattern: "^[0-9a-f]{32}$" }),
  /** When the API accepted this attempt (epoch ms): the key's window runs from the counted attempt's `at`. */
  at: Type.Optional(AcceptedAt),
  views: Type.Array(ViewEvent, { minItems: 1, maxItems: MAX_MESSAGE_ITEMS }),
});
export type KeyedViews = Static<typeof KeyedViews>;

/**
 * Several products' views in one Kafka message (unkeyed): the requests of one producer window travel together.
 * Requests without an Idempotency-Key are merged per product in `views`; each keyed request is one entry of `keyed`.
 */
export const ViewGroup = Type.Object({
  /**
   * When the API accepted the message's unkeyed views (epoch ms; one minute holds them all, ingest/lane-batch.ts):
   * the time their history buckets are counted in. Messages from an API before this carry none.
   */
  at: Type.Optional(AcceptedAt),
  views: Type.Array(ViewEvent, { maxItems: MAX_MESSAGE_ITEMS }),
  keyed: Type.Optional(Type.Array(KeyedViews, { maxItems: MAX_MESSAGE_ITEMS })),
});
export type ViewGroup = Static<typeof ViewGroup>;

/** Views in `events` (the sum of their counts). */
export function viewCount(events: readonly ViewEvent[]): number {
  let n = 0;
  for (const e of events) n += e.count;
  return n;
}

/** What one Kafka message carries, decoded. */
export interface ViewMessage {
  views: ViewEvent[];
  keyed: KeyedViews[];
  /** When the API accepted `views` (epoch ms); null for a message from before acceptance times travelled. */
  at: number | null;
}

const checkEvent = TypeCompiler.Compile(ViewEvent);
const checkGroup = TypeCompiler.Compile(ViewGroup);

// Viewer ids are decimal digits and a sign: nothing needs escaping.
const eventJson = (e: ViewEvent) =>
  e.viewers && e.viewers.length > 0
    ? `{"product_id":"${e.product_id}","count":${e.count},"viewers":["${e.viewers.join('","')}"]}`
    : `{"product_id":"${e.product_id}","count":${e.count}}`;
const eventsJson = (events: readonly ViewEvent[]) => `[${events.map(eventJson).join(",")}]`;

/**
 * A group, with the acceptance time `at` when given; without it, one unkeyed event is its own payload (the form
 * an API sent before times travelled). Digests are hex, so nothing needs escaping.
 */
export function encodeViewEvents(events: readonly ViewEvent[], keyed: readonly KeyedViews[] = [], at?: number): Buffer {
  const time = at === undefined ? "" : `"at":${at},`;
  if (keyed.length === 0) {
    if (events.length === 1 && at === undefined) return Buffer.from(eventJson(events[0]!));
    return Buffer.from(`{${time}"views":${eventsJson(events)}}`);
  }
  const k = keyed
    .map((e) => `{"key":"${e.key}","fp":"${e.fp}",${e.at === undefined ? "" : `"at":${e.at},`}"views":${eventsJson(e.views)}}`)
    .join(",");
  return Buffer.from(`{${time}"views":${eventsJson(events)},"keyed":[${k}]}`);
}

// MAX_MESSAGE_ITEMS events of at most ~75 bytes each, keyed requests' digests besides; Kafka's own limit is 1 MB.
const MAX_PAYLOAD = 768 * 1024;

const lower = (events: readonly ViewEvent[]) =>
  events.map((e) =>
    e.viewers
      ? { product_id: canonicalId(e.product_id), count: e.count, viewers: e.viewers }
      : { product_id: canonicalId(e.product_id), count: e.count },
  );

/** The views a message carries, or null when it is malformed (readViewMessage says why). */
export function decodeViewMessage(payload: Uint8Array | undefined | null): ViewMessage | null {
  const read = readViewMessage(payload);
  return "error" in read ? null : read;
}

/** The views a message carries, or why it cannot be counted (the worker dead-letters it with that reason). */
export function readViewMessage(payload: Uint8Array | undefined | null): ViewMessage | { error: string } {
  if (!payload || payload.length === 0) return { error: "empty message" };
  if (payload.length > MAX_PAYLOAD) return { error: `message larger than ${MAX_PAYLOAD} bytes` };
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("utf8"));
  } catch {
    return { error: "not JSON" };
  }
  const message = checkEvent.Check(v) ? { views: lower([v]), keyed: [], at: null } : checkGroup.Check(v) ? group(v) : null;
  if (message === null) return { error: "not a view message (schema)" };
  if (message.views.length === 0 && message.keyed.length === 0) return { error: "no views" };
  let total = viewCount(message.views);
  for (const k of message.keyed) total += viewCount(k.views);
  if (total > MAX_MESSAGE_VIEWS) return { error: `more than ${MAX_MESSAGE_VIEWS} views in one message` };
  return message;
}

function group(v: ViewGroup): ViewMessage {
  const keyed = (v.keyed ?? []).map((k) =>
    k.at === undefined ? { key: k.key, fp: k.fp, views: lower(k.views) } : { key: k.key, fp: k.fp, at: k.at, views: lower(k.views) },
  );
  return { views: lower(v.views), keyed, at: v.at ?? null };
}

/**
 * Sums the counts per product of a batch request, so a hot product costs one Kafka message per request
 * instead of one per item. Ids come out lower-cased, in first-seen order.
 */
export function coalesceBatch(items: BatchViewRequest["views"]): ViewEvent[] {
  const sums = new Map<string, number>();
  for (const item of items) {
    const id = canonicalId(item.product_id);
    sums.set(id, (sums.get(id) ?? 0) + (item.count ?? 1));
  }
  return Array.from(sums, ([product_id, count]) => ({ product_id, count }));
}
