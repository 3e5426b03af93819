import { createUuidTable } from "./uuid-table.ts";

// The catalog's set of known product ids: each UUID kept as its 128 bits in one open-addressing table (linear
// probing, 16 bytes a slot: uuid-table.ts), the oldest evicted first once `maxSize` are held.
//
// Why not a Set<string>: with many ids known, Set#has costs two cache misses a view (the table, then the stored
// string it compares with), a large share of a batch request's CPU (bench/history/2026-12.md).
// Here a lookup parses 32 hex digits and reads one slot; ids that are not UUIDs are never held (the request schemas
// admit only UUIDs, so the catalog sees nothing else; one that is not is looked up each time, never wrongly known).

export interface IdSet {
  has(id: string): boolean;
  /** Adds `id`, evicting the oldest when full. False when `id` is not a UUID (nothing held). */
  add(id: string): boolean;
  readonly size: number;
}

const WORDS = 4;
const MIN_ORDER = 1 << 10;

// Hex digit values by char code; -1 for anything else.
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX[i.toString(16).charCodeAt(0)] = i;
  HEX[i.toString(16).toUpperCase().charCodeAt(0)] = i;
}
const hex = (c: number) => (c < 128 ? HEX[c]! : -1);

/** Four hex digits at `i` as 16 bits; negative when one is not a hex digit. */
function hex4(id: string, i: number): number {
  return (hex(id.charCodeAt(i)) << 12) | (hex(id.charCodeAt(i + 1)) << 8) | (hex(id.charCodeAt(i + 2)) << 4) | hex(id.charCodeAt(i + 3));
}

/** The UUID's four 32-bit words into `out`, or false when `id` is not a UUID in its 8-4-4-4-12 form (any case). */
function parse(id: string, out: Int32Array): boolean {
  if (id.length !== 36 || id.charCodeAt(8) !== 45 || id.charCodeAt(13) !== 45 || id.charCodeAt(18) !== 45 || id.charCodeAt(23) !== 45) {
    return false;
  }
  const a = hex4(id, 0);
  const b = hex4(id, 4);
  const c = hex4(id, 9);
  const d = hex4(id, 14);
  const e = hex4(id, 19);
  const f = hex4(id, 24);
  const g = hex4(id, 28);
  const h = hex4(id, 32);
  if ((a | b | c | d | e | f | g | h) < 0) return false;
  out[0] = (a << 16) | b;
  out[1] = (c << 16) | d;
  out[2] = (e << 16) | f;
  out[3] = (g << 16) | h;
  return true;
}

export function createIdSet(maxSize: number): IdSet {
  if (!(maxSize >= 1)) throw new RangeError("maxSize must be >= 1");
  const key = new Int32Array(WORDS);
  // The nil UUID, all zeros, marks an empty slot in the table: it is held by `nil` instead.
  const table = createUuidTable();
  let nil = false;
  let size = 0;
  // Keys in the order they were added (a ring once maxSize are held): what to evict next.
  let order = new Int32Array(Math.min(maxSize, MIN_ORDER) * WORDS);
  let head = 0;
  const isNil = (k: Int32Array) => (k[0]! | k[1]! | k[2]! | k[3]!) === 0;

  function evictOldest() {
    const oldest = order.subarray(head * WORDS, head * WORDS + WORDS);
    if (isNil(oldest)) nil = false;
    else table.delete(oldest);
    size--;
  }

  function remember(k: Int32Array) {
    if (size === maxSize) {
      evictOldest();
      order.set(k, head * WORDS);
      head = (head + 1) % maxSize;
    } else {
      if ((size + 1) * WORDS > order.length) {
        const next = new Int32Array(Math.min(maxSize, (order.length / WORDS) * 2) * WORDS);
        next.set(order);
        order = next;
      }
      order.set(k, size * WORDS);
    }
    size++;
  }

  return {
    has(id) {
      if (!parse(id, key)) return false;
      return isNil(key) ? nil : table.has(key);
    },
    add(id) {
      if (!parse(id, key)) return false;
      if (isNil(key)) {
        if (!nil) {
          remember(key);
          nil = true;
        }
        return true;
      }
      if (table.has(key)) return true;
      remember(key);
      table.add(key);
      return true;
    },
    get size() {
      return size;
    },
  };
}
