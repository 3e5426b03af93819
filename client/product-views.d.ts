export interface TrackerOptions {
  /** The API's origin, e.g. "https://views.example.com". */
  endpoint: string;
  /** Send buffered views at least this often (default 1000 ms). */
  flushIntervalMs?: number;
  /** Send at once when this many distinct products wait (default 100, at most 500). */
  maxBatch?: number;
  /** Resends of a batch the API certainly did not count (503 "written": "no"), honouring Retry-After (default 5). */
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
  /** Views acknowledged (202) or handed to a beacon. */
  sent: number;
  /** Views refused or not confirmed. */
  failed: number;
}

export interface Tracker {
  /** Records `count` views (default 1) of a product; false (and onError) when the id is not a UUID. */
  track(productId: string, count?: number): boolean;
  /** Sends what is buffered now; resolves when the API answered. */
  flush(): Promise<void>;
  /** Views buffered, not yet sent. */
  pending(): number;
  /** Requests not yet answered. */
  inFlight(): number;
  stats(): TrackerStats;
}

export function createTracker(options: TrackerOptions): Tracker;
