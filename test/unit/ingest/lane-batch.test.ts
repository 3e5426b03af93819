import { describe, expect, test } from "bun:test";
import { decodeViewMessage, MAX_BATCH_ITEMS, MAX_MESSAGE_ITEMS, MAX_VIEWS_PER_ITEM } from "../../../src/domain/view.ts";
import { matchReports, payloadOf, takeBatch, writtenAfter } from "../../../src/ingest/lane-batch.ts";
import { partitionOf } from "../../../src/ingest/partition.ts";

const id = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const ids = (count: number, from = 0) => Array.from({ length: count }, (_, i) => id(from + i));
const turns = (first: number) => ({ by: "round-robin", first }) as const;
const byProduct = { by: "product" } as const;
/** Ids with a known partition (of 6) under KAFKA_PARTITIONER=product, found deterministically. */
function idsOn(partition: number, count: number, from = 0): string[] {
  const out: string[] = [];
  for (let n = from; out.length < count; n++) if (partitionOf(id(n), 6) === partition) out.push(id(n));
  return out;
}
const req = (...ids: string[]) => ({ events: ids.map((product_id) => ({ product_id, count: 1 })) });

describe("lane batches", () => {
  test("a message never spans two minutes: its acceptance time travels in it, and a request of the next minute opens another", () => {
    const [a, b] = ids(2);
    const T = Date.UTC(2026, 11, 7, 10, 0, 0);
    const queue = [
      { ...req(a!), at: T - 1 },
      { ...req(b!), at: T - 2 }, // the same minute as the first
      { ...req(a!), at: T }, // the next minute: the next partition's message
      { ...req(b!), at: T + 59_999 },
    ];
    const rr = takeBatch(queue, 6, MAX_MESSAGE_ITEMS, turns(0));
    expect(rr.map((m) => [m.partition, m.at, m.entries.length])).toEqual([
      [0, T - 1, 2],
      [1, T, 2],
    ]);
    expect(decodeViewMessage(payloadOf(rr[1]!))?.at).toBe(T);
    // By product, one message a partition: a request of another minute waits for the next batch.
    const [p, q] = idsOn(2, 2);
    const waiting = [
      { ...req(p!), at: T - 1 },
      { ...req(q!), at: T },
    ];
    const byP = takeBatch(waiting, 6, MAX_MESSAGE_ITEMS, byProduct);
    expect(byP.map((m) => m.at)).toEqual([T - 1]);
    expect(waiting.map((e) => e.at)).toEqual([T]);
  });

  test("a window's public views of a product merge their counts and keep every viewer, each an item of the message", () => {
    const [a, b] = ids(2);
    const queue = [
      { events: [{ product_id: a!, count: 1, viewers: ["1"] }] },
      {
        events: [
          { product_id: a!, count: 1, viewers: ["2"] },
          { product_id: b!, count: 1, viewers: ["2"] },
        ],
      },
      { events: [{ product_id: a!, count: 5 }] },
    ];
    const [m] = takeBatch(queue, 6, MAX_MESSAGE_ITEMS, turns(0));
    expect(m!.items).toBe(2 + 3);
    expect(decodeViewMessage(payloadOf(m!))).toEqual({
      views: [
        { product_id: a!, count: 7, viewers: ["1", "2"] },
        { product_id: b!, count: 1, viewers: ["2"] },
      ],
      keyed: [],
      at: null,
    });
  });

  test("the largest message the producer can build (full batch requests merged) is one the worker can read", () => {
    // Found by the bench: at 1000 batch requests/s, merged messages of more than 1000 products (or over
    // 128 KB, or a product above 1 000 000 views) were refused by the worker's decoder as malformed: 5000
    // views that got 202 were never counted.
    const all = ids(MAX_MESSAGE_ITEMS);
    const hot = all[0]!;
    const full = (from: number) => ({
      events: [hot, ...all.slice(from + 1, from + MAX_BATCH_ITEMS)].map((product_id) => ({ product_id, count: MAX_VIEWS_PER_ITEM * 1000 })),
    });
    const queue = [full(0), full(MAX_BATCH_ITEMS), full(2 * MAX_BATCH_ITEMS), full(3 * MAX_BATCH_ITEMS)];
    const batch = takeBatch(queue, 6, MAX_MESSAGE_ITEMS, turns(0));
    expect(batch).toHaveLength(1);
    expect(batch[0]!.entries).toHaveLength(4);
    expect(batch[0]!.counts.size).toBeGreaterThan(MAX_BATCH_ITEMS);
    const decoded = decodeViewMessage(payloadOf(batch[0]!))?.views;
    expect(decoded).not.toBeNull();
    const sum = (events: { count: number }[]) => events.reduce((n, e) => n + e.count, 0);
    expect(sum(decoded!)).toBe(4 * MAX_BATCH_ITEMS * MAX_VIEWS_PER_ITEM * 1000);
    expect(decoded!.find((e) => e.product_id === hot)!.count).toBe(4 * MAX_VIEWS_PER_ITEM * 1000);
  });

  test("the largest message of keyed requests (one view each, the most digests) is one the worker can read", () => {
    const all = ids(MAX_MESSAGE_ITEMS);
    const queue = all.map((product_id, i) => ({
      events: [{ product_id, count: 1 }],
      tag: { key: i.toString(16).padStart(32, "0"), fp: "f".repeat(32) },
    }));
    const batch = takeBatch(queue, 6, MAX_MESSAGE_ITEMS, turns(0));
    expect(batch).toHaveLength(1);
    expect(batch[0]!.keyed).toHaveLength(MAX_MESSAGE_ITEMS);
    const decoded = decodeViewMessage(payloadOf(batch[0]!));
    expect(decoded?.keyed).toHaveLength(MAX_MESSAGE_ITEMS);
  });

  test("a keyed request is not merged: it travels as its own entry, beside the merged ones, within the item limit", () => {
    const [a, b] = ids(2);
    const tag = { key: "a".repeat(32), fp: "b".repeat(32) };
    const queue = [req(a!), req(a!), { ...req(a!, b!), tag }, { ...req(b!), tag: { ...tag, key: "c".repeat(32) } }];
    const batch = takeBatch(queue, 1, 3, turns(0));
    expect(batch).toHaveLength(1);
    expect([...batch[0]!.counts]).toEqual([[a!, 2]]);
    expect(batch[0]!.keyed).toEqual([{ ...tag, views: req(a!, b!).events }]);
    expect(batch[0]!.items).toBe(3);
    expect(queue).toHaveLength(1); // the second keyed request would make 3 + 1 > 3 items: next batch
    expect(decodeViewMessage(payloadOf(batch[0]!))).toEqual({ views: [{ product_id: a!, count: 2 }], keyed: batch[0]!.keyed, at: null });
  });

  test("a window's requests merge into one message, whatever their products, on the partition the batch starts at", () => {
    const [a, b, c] = ids(3);
    const queue = [req(a!), req(b!), req(a!, c!), req(a!)];
    const batch = takeBatch(queue, 6, 100, turns(4));
    expect(queue).toHaveLength(0);
    expect(batch).toHaveLength(1);
    expect(batch[0]!.partition).toBe(4);
    expect(batch[0]!.key).toBeUndefined(); // unkeyed: the key would say nothing of where the message went
    expect(batch[0]!.entries).toHaveLength(4);
    expect([...batch[0]!.counts]).toEqual([
      [a!, 3],
      [b!, 1],
      [c!, 1],
    ]);
  });

  test("a window too large for one message spills into the following partitions, one message each, each request whole", () => {
    const [a, b, c, d, e, f, g, h] = ids(8);
    const queue = [req(a!, b!, c!), req(d!, e!), req(f!), req(g!, h!)];
    // Four items a message: [a b c] + [d e] would be 5, so the second request starts the next partition's message.
    const batch = takeBatch(queue, 6, 4, turns(5));
    expect(batch.map((m) => m.partition)).toEqual([5, 0, 1]);
    expect(batch.map((m) => m.entries.length)).toEqual([1, 2, 1]);
    expect(queue).toHaveLength(0);
  });

  test("at most one message per partition: what no partition's message can take waits, in order, for the next batch", () => {
    const queue = [req(...ids(3)), req(...ids(3, 3)), req(...ids(2, 6)), req(...ids(1, 8))];
    const [first, second, third, fourth] = queue;
    const batch = takeBatch(queue, 2, 4, turns(1));
    expect(batch.map((m) => m.partition)).toEqual([1, 0]);
    expect(batch.flatMap((m) => m.entries)).toEqual([first!, second!, fourth!]);
    expect(queue).toEqual([third!]);
  });
});

describe("lane batches with KAFKA_PARTITIONER=product", () => {
  test("requests of one partition merge into one message, views summed per product", () => {
    const [a, b] = idsOn(2, 2);
    const queue = [req(a!), req(a!), req(b!)];
    const batch = takeBatch(queue, 6, 100, byProduct);
    expect(queue).toHaveLength(0);
    expect(batch).toHaveLength(1);
    expect(batch[0]!.partition).toBe(2);
    expect(batch[0]!.key).toBe(a!);
    expect([...batch[0]!.counts]).toEqual([
      [a!, 2],
      [b!, 1],
    ]);
  });

  test("at most one message per partition; a request goes whole to its first product's partition", () => {
    const [x] = idsOn(1, 1);
    const [y] = idsOn(4, 1);
    const batch = takeBatch([req(x!), req(y!), req(y!, x!)], 6, 100, byProduct);
    expect(batch.map((m) => m.partition).sort()).toEqual([1, 4]);
    const four = batch.find((m) => m.partition === 4)!;
    expect(four.entries).toHaveLength(2);
    expect(four.counts.get(x!)).toBe(1); // x travels with the request that named y first
    for (const m of batch) expect(partitionOf(m.key!, 6)).toBe(m.partition);
  });

  test("a request that would overflow its partition's message waits, in order, for the next batch", () => {
    const ids = idsOn(3, 5);
    const big = req(...ids.slice(0, 3));
    const second = req(...ids.slice(3, 5));
    const other = req(idsOn(0, 1)[0]!);
    const queue = [big, second, other];
    const batch = takeBatch(queue, 6, 4, byProduct);
    expect(queue).toEqual([second]);
    expect(batch.flatMap((m) => m.entries)).toEqual([big, other]);
  });
});

describe("delivery reports", () => {
  test("each message gets its own partition's report: one failure fails only its own message", () => {
    const { outcomes, unmatched } = matchReports(
      [{ partition: 0 }, { partition: 3 }],
      [{ partition: 3, error: { code: 10, message: "Broker: Message size too large" } }, { partition: 0 }],
    );
    expect(unmatched).toBe(0);
    expect(outcomes[0]).toEqual({ ok: true });
    expect(outcomes[1]).toEqual({ ok: false, written: "no", reason: "Broker: Message size too large" });
  });

  test("a timeout may have been written: unknown, not 'no'", () => {
    expect(writtenAfter(-192)).toBe("unknown");
    expect(writtenAfter(-152)).toBe("no");
    const { outcomes } = matchReports([{ partition: 1 }], [{ partition: 1, error: { code: -192, message: "Local: Message timed out" } }]);
    expect(outcomes[0]).toMatchObject({ ok: false, written: "unknown" });
  });

  test("a message without a report was never enqueued: not written", () => {
    const { outcomes } = matchReports([{ partition: 1 }, { partition: 2 }], [{ partition: 1 }]);
    expect(outcomes).toEqual([{ ok: true }, { ok: false, written: "no", reason: "not handed to Kafka" }]);
  });

  test("reports that do not fit one to one make only the ambiguous messages unknown", () => {
    // A stray report for partition 5 and two for partition 2: nothing is guessed there.
    const { outcomes, unmatched } = matchReports(
      [{ partition: 1 }, { partition: 2 }, { partition: 4 }],
      [{ partition: 1 }, { partition: 2 }, { partition: 2 }, { partition: 5 }],
    );
    expect(unmatched).toBe(3);
    expect(outcomes[0]).toEqual({ ok: true });
    expect(outcomes[1]).toMatchObject({ ok: false, written: "unknown" });
    expect(outcomes[2]).toMatchObject({ ok: false, written: "unknown" });
  });
});
