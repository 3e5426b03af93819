// The bench's traffic law, shared by the k6 script (single-view bodies, built per VU) and bench/run.ts (the batch
// bodies it writes), so both draw from the same distribution: a Zipf law with s = 1.1 over the ids in their order (a
// few very hot products, a long tail), by inverting the continuous power law: O(1) a draw, no table.

/**
 * @template T
 * @param {readonly T[]} ids
 * @returns {() => T}
 */
export function zipfOf(ids) {
  const S = 1.1;
  const N = ids.length;
  const A = N ** (1 - S) - 1;
  return () => /** @type {T} */ (ids[Math.min(N - 1, Math.floor((A * Math.random() + 1) ** (1 / (1 - S))) - 1)]);
}
