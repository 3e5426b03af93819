// Token buckets per key, in views: a key may take `burst` views at once and `perS` more each second. Bounded:
// at most `capacity` buckets, the oldest created dropped first (a dropped bucket starts again full, so a flood
// of new keys can only forget limits, never lock out a key it does not hold). Buckets that have refilled are
// dropped as new keys come, for free: a full bucket is the same as none.

export interface RateLimiter {
  /**
   * Takes `n` views from the key's bucket and returns 0, or takes nothing and returns the seconds until `n`
   * would be there (never 0 when refused).
   */
  take(key: string, n: number, nowMs: number): number;
  readonly size: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createRateLimiter(opts: { burst: number; perS: number; capacity: number }): RateLimiter {
  const { burst, perS, capacity } = opts;
  const buckets = new Map<string, Bucket>();
  // Keys in creation order: a bucket is only ever deleted as its key leaves the front, so each key is here once.
  const ring: (string | undefined)[] = new Array(capacity);
  let head = 0;
  let length = 0;

  const refilled = (b: Bucket, nowMs: number) => Math.min(burst, b.tokens + ((nowMs - b.at) / 1000) * perS);

  function dropOldest(nowMs: number, onlyFull: boolean): boolean {
    const key = ring[head]!;
    if (onlyFull && refilled(buckets.get(key)!, nowMs) < burst) return false;
    buckets.delete(key);
    ring[head] = undefined;
    head = (head + 1) % capacity;
    length--;
    return true;
  }

  return {
    take(key, n, nowMs) {
      if (perS === 0) return 0;
      let b = buckets.get(key);
      if (b === undefined) {
        while (length > 0 && dropOldest(nowMs, length < capacity));
        b = { tokens: burst, at: nowMs };
        buckets.set(key, b);
        ring[(head + length) % capacity] = key;
        length++;
      }
      const tokens = refilled(b, nowMs);
      if (tokens < n) return Math.max(1, Math.ceil((n - tokens) / perS));
      b.tokens = tokens - n;
      b.at = nowMs;
      return 0;
    },
    get size() {
      return buckets.size;
    },
  };
}
