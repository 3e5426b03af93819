// The catalog's set of known product ids: each UUID kept as its 128 bits in one open-addressing table (linear
// probing, 16 bytes a slot), the oldest evicted first once `maxSize` are held.
//
// Why not a Set<string>: with many ids known, Set#has costs two cache misses a view (the table, then the stored
// string it compares with), a large share of a batch request's CPU (bench/RESULTS.md).
// Here a lookup parses 32 hex digits and reads one slot; ids that are not UUIDs are never held (the request schemas
// admit only UUIDs, so the catalog sees nothing else; one that is not is looked up each time, never wrongly known).

export interface IdSet {
  has(id: string): boolean;
  /** Adds `id`, evicting the oldest when full. False when `id` is not a UUID (nothing held). */
  add(id: string): boolean;
  readonly size: number;
}

const WORDS = 4;
const MIN_SLOTS = 1 << 10;
// The table is kept at most half full: short probe runs.
const LOAD = 0.5;

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

function hash(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca77) ^ Math.imul(c, 0xc2b2ae3d) ^ Math.imul(d, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 12);
}

export function createIdSet(maxSize: number): IdSet {
  if (!(maxSize >= 1)) throw new RangeError("maxSize must be >= 1");
  const key = new Int32Array(WORDS);
  let slots = MIN_SLOTS;
  let mask = slots - 1;
  // All four words zero marks an empty slot; the nil UUID, which is all zeros, is held by `nil` instead.
  let table = new Int32Array(slots * WORDS);
  let nil = false;
  let size = 0;
  // Keys in the order they were added (a ring once maxSize are held): what to evict next.
  let order = new Int32Array(Math.min(maxSize, MIN_SLOTS) * WORDS);
  let head = 0;

  const empty = (t: Int32Array, s: number) => (t[s * WORDS]! | t[s * WORDS + 1]! | t[s * WORDS + 2]! | t[s * WORDS + 3]!) === 0;
  const home = (t: Int32Array, s: number, m: number) => hash(t[s * WORDS]!, t[s * WORDS + 1]!, t[s * WORDS + 2]!, t[s * WORDS + 3]!) & m;

  /** The slot holding `k`, or -1. */
  function find(k: Int32Array): number {
    let s = hash(k[0]!, k[1]!, k[2]!, k[3]!) & mask;
    for (;;) {
      const o = s * WORDS;
      if (table[o] === k[0] && table[o + 1] === k[1] && table[o + 2] === k[2] && table[o + 3] === k[3]) return s;
      if (empty(table, s)) return -1;
      s = (s + 1) & mask;
    }
  }

  function place(t: Int32Array, m: number, a: number, b: number, c: number, d: number) {
    let s = hash(a, b, c, d) & m;
    while (!empty(t, s)) s = (s + 1) & m;
    const o = s * WORDS;
    t[o] = a;
    t[o + 1] = b;
    t[o + 2] = c;
    t[o + 3] = d;
  }

  function grow() {
    const old = table;
    const oldSlots = slots;
    slots *= 2;
    mask = slots - 1;
    table = new Int32Array(slots * WORDS);
    for (let s = 0; s < oldSlots; s++) {
      if (!empty(old, s)) place(table, mask, old[s * WORDS]!, old[s * WORDS + 1]!, old[s * WORDS + 2]!, old[s * WORDS + 3]!);
    }
  }

  /** Empties slot `s` and moves later members of its probe run back, so that every member stays reachable. */
  function remove(s: number) {
    let hole = s;
    let j = s;
    for (;;) {
      j = (j + 1) & mask;
      if (empty(table, j)) break;
      const h = home(table, j, mask);
      // j's member may fill the hole unless its home lies cyclically in (hole, j].
      const movable = hole <= j ? h <= hole || h > j : h <= hole && h > j;
      if (movable) {
        table.copyWithin(hole * WORDS, j * WORDS, j * WORDS + WORDS);
        hole = j;
      }
    }
    table.fill(0, hole * WORDS, hole * WORDS + WORDS);
  }

  function evictOldest() {
    const oldest = order.subarray(head * WORDS, head * WORDS + WORDS);
    if ((oldest[0]! | oldest[1]! | oldest[2]! | oldest[3]!) === 0) nil = false;
    else remove(find(oldest));
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
      if ((key[0]! | key[1]! | key[2]! | key[3]!) === 0) return nil;
      return find(key) >= 0;
    },
    add(id) {
      if (!parse(id, key)) return false;
      if ((key[0]! | key[1]! | key[2]! | key[3]!) === 0) {
        if (!nil) {
          remember(key);
          nil = true;
        }
        return true;
      }
      if (find(key) >= 0) return true;
      remember(key);
      if (size > slots * LOAD) grow();
      place(table, mask, key[0]!, key[1]!, key[2]!, key[3]!);
      return true;
    },
    get size() {
      return size;
    },
  };
}
