// An open-addressing hash table of 128-bit keys (a UUID as four 32-bit words): linear probing, 16 bytes a slot,
// kept at most half full (short probe runs). All four words zero marks an empty slot, so the zero key cannot be
// held (id-set.ts holds the nil UUID apart). Deletion moves later members of the probe run back, no tombstones.

const WORDS = 4;
const MIN_SLOTS = 1 << 10;
const LOAD = 0.5;

function hash(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca77) ^ Math.imul(c, 0xc2b2ae3d) ^ Math.imul(d, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 12);
}

const empty = (t: Int32Array, s: number) => (t[s * WORDS]! | t[s * WORDS + 1]! | t[s * WORDS + 2]! | t[s * WORDS + 3]!) === 0;
const home = (t: Int32Array, s: number, m: number) => hash(t[s * WORDS]!, t[s * WORDS + 1]!, t[s * WORDS + 2]!, t[s * WORDS + 3]!) & m;

function place(t: Int32Array, m: number, a: number, b: number, c: number, d: number) {
  let s = hash(a, b, c, d) & m;
  while (!empty(t, s)) s = (s + 1) & m;
  const o = s * WORDS;
  t[o] = a;
  t[o + 1] = b;
  t[o + 2] = c;
  t[o + 3] = d;
}

export function createUuidTable() {
  let slots = MIN_SLOTS;
  let mask = slots - 1;
  let table = new Int32Array(slots * WORDS);
  let count = 0;

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

  return {
    has: (k: Int32Array) => find(k) >= 0,
    /** Adds a key not held yet (not the zero key). */
    add(k: Int32Array) {
      if (++count > slots * LOAD) grow();
      place(table, mask, k[0]!, k[1]!, k[2]!, k[3]!);
    },
    /** Removes a key that is held. */
    delete(k: Int32Array) {
      remove(find(k));
      count--;
    },
  };
}
