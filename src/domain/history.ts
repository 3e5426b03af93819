// Time windows of /top and buckets of a product's series. Time is when the API accepted a view (carried in its
// Kafka message), in UTC.

export const WINDOWS = ["1h", "24h", "7d", "all"] as const;
export type Window = Exclude<(typeof WINDOWS)[number], "all">;

export const BUCKETS = ["minute", "hour", "day"] as const;
export type Bucket = (typeof BUCKETS)[number];

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
export const BUCKET_MS: Record<Bucket, number> = { minute: MINUTE, hour: HOUR, day: 24 * HOUR };

/**
 * A window counts whole buckets: the one `now` is in and the ones before it, W / bucket in all. So "1h" at 12:34:20
 * counts from 11:35:00 (60 minutes, the current one partly gone), "24h" from 13:00 the day before (24 hours) and "7d"
 * from the same hour seven days back (168 hours): between W minus one bucket and W, never more.
 */
export const WINDOW_BUCKET: Record<Window, { bucket: Bucket; count: number }> = {
  "1h": { bucket: "minute", count: 60 },
  "24h": { bucket: "hour", count: 24 },
  "7d": { bucket: "hour", count: 168 },
};

export const floorTo = (ms: number, bucket: Bucket) => Math.floor(ms / BUCKET_MS[bucket]) * BUCKET_MS[bucket];

/** The start of the window's first bucket at `now` (epoch ms). */
export function windowStart(window: Window, now: number): number {
  const { bucket, count } = WINDOW_BUCKET[window];
  return floorTo(now, bucket) - (count - 1) * BUCKET_MS[bucket];
}

/** `window` of GET /top and its stream: absent -> "all"; otherwise one of WINDOWS, given once. */
export function parseWindow(raw: unknown): Window | "all" | { error: string } {
  if (raw === undefined) return "all";
  if (typeof raw !== "string" || !(WINDOWS as readonly string[]).includes(raw))
    return { error: `window must be one of ${WINDOWS.join(", ")}` };
  return raw as Window | "all";
}

/** Points one series answer holds at most: a day of minutes, two months of hours, four years of days. */
export const MAX_POINTS = 1440;
/** The span of a series when `from` is not given: the last hour, day or 30 days. */
const DEFAULT_POINTS: Record<Bucket, number> = { minute: 60, hour: 24, day: 30 };

export interface SeriesQuery {
  bucket: Bucket;
  /** First and last bucket start (epoch ms), both included. */
  from: number;
  to: number;
}

const timeOf = (raw: string) => (/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?$/.test(raw) ? Date.parse(raw) : Number.NaN);

/** ?bucket=&from=&to= of a product's series; `from`/`to` are ISO 8601 times, rounded down to their bucket. */
export function parseSeries(q: Record<string, unknown>, now: number): SeriesQuery | { error: string } {
  const b = q.bucket ?? "hour";
  if (typeof b !== "string" || !(BUCKETS as readonly string[]).includes(b)) return { error: `bucket must be one of ${BUCKETS.join(", ")}` };
  const bucket = b as Bucket;
  for (const k of ["from", "to"] as const) {
    if (q[k] !== undefined && (typeof q[k] !== "string" || Number.isNaN(timeOf(q[k] as string)))) {
      return { error: `${k} must be an ISO 8601 time given once, such as 2026-12-07T10:00:00Z` };
    }
  }
  const to = floorTo(q.to === undefined ? now : timeOf(q.to as string), bucket);
  const step = BUCKET_MS[bucket];
  const from = q.from === undefined ? to - (DEFAULT_POINTS[bucket] - 1) * step : floorTo(timeOf(q.from as string), bucket);
  if (from > to) return { error: "from must not be after to" };
  if ((to - from) / step + 1 > MAX_POINTS) return { error: `at most ${MAX_POINTS} ${bucket}s in one answer; narrow from..to` };
  return { bucket, from, to };
}

/** Every bucket from `from` to `to`, zero where `views` has none. */
export function zeroFilled(views: ReadonlyMap<number, number>, q: SeriesQuery): Array<{ t: string; views: number }> {
  const out: Array<{ t: string; views: number }> = [];
  for (let t = q.from; t <= q.to; t += BUCKET_MS[q.bucket]) out.push({ t: new Date(t).toISOString(), views: views.get(t) ?? 0 });
  return out;
}
