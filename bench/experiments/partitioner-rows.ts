// Row updates per flush under the two KAFKA_PARTITIONER placements, for the capacity model (docs/capacity.md).
// With "product", each product's single views stay on one partition, so one worker counts all of them: a flush
// period's views cost one row per distinct product over all workers. With "round-robin", each window goes to
// the next partition, so every worker sees an even share of every product: one row per distinct product per
// worker. The traffic is the bench's law (bench/k6/zipf.js: Zipf s = 1.1 over 100 000 products).
//   bun bench/experiments/partitioner-rows.ts
import { zipfOf } from "../k6/zipf.js";

const ids = Array.from({ length: 100_000 }, (_, i) => i);
const draw = zipfOf(ids);
const distinct = (n: number) => {
  const seen = new Set<number>();
  for (let i = 0; i < n; i++) seen.add(draw());
  return seen.size;
};

// (views per flush period over all workers, workers): 2 000/s and 100 000/s with 150 ms flushes on 1, 2 and 4
// workers; 1 000 000/s with 200 ms and 3 s flushes on 8 workers (the capacity model's cases).
const cases: Array<[string, number, number]> = [
  ["2 000 views/s, 150 ms, 1 worker", 300, 1],
  ["2 000 views/s, 150 ms, 2 workers", 300, 2],
  ["100 000 views/s, 150 ms, 4 workers", 15_000, 4],
  ["1 000 000 views/s, 200 ms, 8 workers", 200_000, 8],
  ["1 000 000 views/s, 3 s, 8 workers", 3_000_000, 8],
];
for (const [name, views, workers] of cases) {
  const byProduct = distinct(views);
  let roundRobin = 0;
  for (let w = 0; w < workers; w++) roundRobin += distinct(Math.round(views / workers));
  console.log(`${name}: rows per flush period product=${byProduct} round-robin=${roundRobin} (${(roundRobin / byProduct).toFixed(2)}x)`);
}
