export interface TrackerOptions {
  /** The API's origin, e.g. "https://views.example.com". */
  endpoint: string;
  /** Send buffered views at least this often (default 1000 ms). */
  flushIntervalMs?: number;
  /** Send at once when this many distinct products wait (default and at most 100: the API's public batch limit). */
  maxBatch?: number;
  /** Resends of a batch the API certainly did not count (429, 503 "written": "no"), honouring Retry-After (default 5). */
  maxRetries?: number;
  /** Views that were refused or may be lost; default: console.warn. */
  onError?: (error: Error) => void;
  /** For tests or other runtimes; default: globalThis.fetch. */
  fetch?: typeof fetch;
}

export interface TrackerStats {
  /** fetch requests made (retries included). */
  requests: number;
  /** Batches handed to navigator.sendBeacon. */
  beacons: number;
  /** Views counted (202) or handed to a beacon (whose answer a page cannot read). */
  sent: number;
  /** Views the API answered as counted (202). */
  counted: number;
  /** Views the API answered as not counted (200: a repeat within its window, or a bot's User-Agent). */
  ignored: number;
  /** Views refused or not confirmed. */
  failed: number;
}

export interface Tracker {
  /** Records a view of a product (once per send, however often tracked); false (and onError) when the id is not a UUID. */
  track(productId: string): boolean;
  /** Sends what is buffered now; resolves when the API answered. */
  flush(): Promise<void>;
  /** Products buffered or waiting for a retry, not yet sent. */
  pending(): number;
  /** Requests whose answer is not yet in stats (or handed to a retry, which pending() counts). */
  inFlight(): number;
  stats(): TrackerStats;
}

export function createTracker(options: TrackerOptions): Tracker;
