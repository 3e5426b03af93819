// A map that knows its oldest entry in O(1): for memories bounded by evicting the oldest first (the API's
// Idempotency-Keys, the catalog's unknown ids).
//
// Why not a Map and `map.keys().next()`: JavaScriptCore leaves a deleted entry's slot behind until the table is
// rebuilt, and iteration from the front walks over every such slot. A full memory deletes its front entry on every
// insert, so finding the oldest costs more with every eviction, without bound (bench/RESULTS.md). Here a queue of (key, generation) pairs gives the insertion order; an entry set again or
// deleted leaves a stale pair that is skipped once it reaches the front.

export interface OrderedMap<V> {
  get(key: string): V | undefined;
  /** Sets `key` as the newest entry (also when it was there already). */
  set(key: string, value: V): void;
  delete(key: string): void;
  /** The oldest entry, or undefined when empty. */
  oldest(): { key: string; value: V } | undefined;
  deleteOldest(): void;
  readonly size: number;
}

export function createOrderedMap<V>(): OrderedMap<V> {
  const entries = new Map<string, { value: V; gen: number }>();
  let queue: { key: string; gen: number }[] = [];
  let head = 0;
  let gen = 0;

  /** Drops stale pairs at the front; the front pair is then the oldest live entry (if any). */
  function front(): { key: string; gen: number } | undefined {
    while (head < queue.length) {
      const q = queue[head]!;
      if (entries.get(q.key)?.gen === q.gen) return q;
      head++;
    }
    return undefined;
  }

  function compact() {
    // Keeps the queue within a few times the live entries, however many sets and deletes it has seen.
    if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    } else if (queue.length - head > 4 * entries.size + 1024) {
      queue = queue.slice(head).filter((q) => entries.get(q.key)?.gen === q.gen);
      head = 0;
    }
  }

  return {
    get: (key) => entries.get(key)?.value,
    set(key, value) {
      entries.set(key, { value, gen: ++gen });
      queue.push({ key, gen });
      compact();
    },
    delete(key) {
      entries.delete(key);
    },
    oldest() {
      const q = front();
      return q ? { key: q.key, value: entries.get(q.key)!.value } : undefined;
    },
    deleteOldest() {
      const q = front();
      if (!q) return;
      entries.delete(q.key);
      head++;
      compact();
    },
    get size() {
      return entries.size;
    },
  };
}
