// Which (viewer, product) pairs this API process counted within the repeat window. A pair is a 53-bit hash of
// the viewer and the product id (two distinct pairs share one with odds ~ n / 2^53: at a million pairs, one in
// nine billion views is wrongly called a repeat). Bounded: at most `capacity` pairs, the oldest dropped first;
// expired pairs leave from the front as new ones arrive, so a quiet process holds what its last window saw.
//
// Entries live in a Map (pair -> time counted) and a ring of (pair, time) in insertion order: the ring finds
// the oldest in O(1) (JavaScriptCore's Map iterates over deleted slots, see ordered-map.ts), and a ring entry
// whose time no longer matches the Map's is stale (the pair was forgotten or counted again) and is skipped.

export interface RepeatMemory {
  /** True when `pair` was counted within the window; otherwise records it as counted at `nowMs`. */
  check(pair: number, nowMs: number): boolean;
  /** Undoes check()'s record (the view was refused after all), unless the pair was counted again since. */
  forget(pair: number, countedAtMs: number): void;
  readonly size: number;
}

/** The pair's key: the viewer's 64 bits seed a hash of the product id, cut to 53 bits (a safe integer). */
export function pairKey(viewerId: bigint, productId: string): number {
  return Number(Bun.hash.xxHash64(productId, viewerId & 0xffffffffffffffffn) & 0x1fffffffffffffn);
}

export function createRepeatMemory(opts: { windowMs: number; capacity: number }): RepeatMemory {
  const { windowMs, capacity } = opts;
  const counted = new Map<number, number>();
  const ringPairs = new Float64Array(capacity);
  const ringTimes = new Float64Array(capacity);
  let head = 0;
  let length = 0;

  function dropOldest() {
    const pair = ringPairs[head]!;
    if (counted.get(pair) === ringTimes[head]) counted.delete(pair);
    head = (head + 1) % capacity;
    length--;
  }

  return {
    check(pair, nowMs) {
      const at = counted.get(pair);
      if (at !== undefined && nowMs - at < windowMs) return true;
      while (length > 0 && (length === capacity || nowMs - ringTimes[head]! >= windowMs)) dropOldest();
      counted.set(pair, nowMs);
      const tail = (head + length) % capacity;
      ringPairs[tail] = pair;
      ringTimes[tail] = nowMs;
      length++;
      return false;
    },
    forget(pair, countedAtMs) {
      if (counted.get(pair) === countedAtMs) counted.delete(pair);
    },
    get size() {
      return counted.size;
    },
  };
}
