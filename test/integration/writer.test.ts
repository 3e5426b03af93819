import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { flush } from "../../src/worker/writer.ts";
import { isDataError, isDryRunEnd, NO_MINUTE } from "../../src/db/flush.ts";
import { expireKeys } from "../../src/db/keys.ts";
import { loadOffsets, NO_OFFSET } from "../../src/db/offsets.ts";
import type { Batch } from "../../src/worker/coalescer.ts";
import type { KeyedViews } from "../../src/domain/view.ts";
import { FLUSH_CHANNEL, parseFlush } from "../../src/db/flush-channel.ts";
import { getProduct } from "../../src/db/products.ts";
import { seedProducts, viewCounts } from "./harness/db.ts";
import { prepare, testEnv, uniqueName } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

// The writer alone against real Postgres: the fence, and sums across partitions.
describe("flush writer", () => {
  const env = testEnv();
  let ctx: Awaited<ReturnType<typeof prepare>>;
  let ids: string[];
  beforeAll(async () => {
    ctx = await prepare(env);
    ids = await seedProducts(ctx.db, 3, "writer");
  });
  afterAll(() => bounded("ctx.db.close", ctx.db.close()));

  const TOPIC_ID = "11111111-1111-4111-8111-111111111111";
  const KEYS = { windowMs: 600_000 };
  const slice = (partition: number, base: number, next: number, counts: Record<string, number>) => ({
    partition,
    base,
    next,
    counts: new Map(Object.entries(counts)),
    minutes: new Map([[NO_MINUTE, new Map(Object.entries(counts))]]),
    keyed: [],
    viewerIds: [] as string[],
    viewers: [] as string[],
    views: Object.values(counts).reduce((a, b) => a + b, 0),
  });

  test("applies counts and offsets together, and refuses a slice whose base moved (another worker)", async () => {
    const topic = uniqueName("writer");
    const before = await viewCounts(ctx.db, ids);
    const first: Batch = { slices: [slice(0, NO_OFFSET, 10, { [ids[0]!]: 4 })], products: 1, views: 4 };
    expect((await flush(ctx.db.db, topic, first, TOPIC_ID, KEYS)).fenced).toEqual([]);
    expect((await loadOffsets(ctx.db.db, topic, [0, 1])).get(0)).toEqual({ next: 10, topicId: TOPIC_ID });
    // A zombie still believing the partition is at NO_OFFSET must not apply its views again.
    const zombie = await flush(ctx.db.db, topic, first, TOPIC_ID, KEYS);
    expect(zombie.fenced).toEqual([{ partition: 0, stored: 10 }]);
    expect(zombie.views).toBe(0);
    const after = await viewCounts(ctx.db, ids);
    expect(after.get(ids[0]!)! - before.get(ids[0]!)!).toBe(4);
  });

  describe("unique viewers", () => {
    /** A slice whose `n` views of `id` come from viewers first..first+n-1 (public views, one each). */
    const publicSlice = (partition: number, base: number, next: number, id: string, first: number, n: number) => ({
      ...slice(partition, base, next, { [id]: n }),
      viewerIds: Array.from({ length: n }, () => id),
      viewers: Array.from({ length: n }, (_, i) => String(first + i)),
    });
    const uniqueViewers = async (id: string) =>
      Number((await ctx.db.sql<{ u: string }[]>`SELECT unique_viewers AS u FROM products WHERE id = ${id}`)[0]!.u);

    test("exact while small: repeats and replays of a viewer add nothing, a fenced slice adds nothing", async () => {
      const topic = uniqueName("writer");
      const [p] = await seedProducts(ctx.db, 1, "uv-small");
      const one = (partition: number, base: number, next: number, first: number, n: number): Batch => ({
        slices: [publicSlice(partition, base, next, p!, first, n)],
        products: 1,
        views: n,
      });
      await flush(ctx.db.db, topic, one(0, NO_OFFSET, 1, 0, 30), TOPIC_ID, KEYS);
      expect(await uniqueViewers(p!)).toBe(30);
      // Viewers 20..49 on another partition: 20 new ones.
      await flush(ctx.db.db, topic, one(1, NO_OFFSET, 1, 20, 30), TOPIC_ID, KEYS);
      expect(await uniqueViewers(p!)).toBe(50);
      // A zombie's replay of the first slice is fenced: neither its views nor its viewers count.
      const zombie = await flush(ctx.db.db, topic, one(0, NO_OFFSET, 1, 1000, 5), TOPIC_ID, KEYS);
      expect(zombie.fenced).toHaveLength(1);
      expect(await uniqueViewers(p!)).toBe(50);
      expect((await viewCounts(ctx.db, [p!])).get(p!)).toBe(60);
    });

    test("at scale the estimate is within 2 % (HyperLogLog, log2m 13: standard error 1.15 %)", async () => {
      const topic = uniqueName("writer");
      const errors: string[] = [];
      for (const [i, n] of [1_000, 10_000, 100_000].entries()) {
        const [p] = await seedProducts(ctx.db, 1, `uv-${n}`);
        // Two flushes over half the viewers each, on two partitions, a tenth of them in both.
        const half = Math.floor(n / 2);
        const batch: Batch = {
          slices: [publicSlice(2 * i, NO_OFFSET, 1, p!, 0, half + n / 10), publicSlice(2 * i + 1, NO_OFFSET, 1, p!, half, n - half)],
          products: 1,
          views: n + n / 10,
        };
        await flush(ctx.db.db, topic, batch, TOPIC_ID, KEYS);
        const got = await uniqueViewers(p!);
        const error = Math.abs(got - n) / n;
        errors.push(`${n}: ${got} (${(error * 100).toFixed(2)} %)`);
        expect(error).toBeLessThanOrEqual(0.02);
      }
      console.log(`unique viewers estimated: ${errors.join(", ")}`);
    });
  });

  test("a product present in two partitions' slices gets the sum of both", async () => {
    const topic = uniqueName("writer");
    const before = await viewCounts(ctx.db, ids);
    const batch: Batch = {
      slices: [slice(0, NO_OFFSET, 5, { [ids[1]!]: 2, [ids[2]!]: 1 }), slice(1, NO_OFFSET, 3, { [ids[1]!]: 3 })],
      products: 3,
      views: 6,
    };
    const res = await flush(ctx.db.db, topic, batch, TOPIC_ID, KEYS);
    expect(res).toMatchObject({ rowsUpdated: 2, unknownProducts: 0, views: 6 });
    const after = await viewCounts(ctx.db, ids);
    expect(after.get(ids[1]!)! - before.get(ids[1]!)!).toBe(5);
    expect(after.get(ids[2]!)! - before.get(ids[2]!)!).toBe(1);
  });

  test("sums across partitions past 2^53 stay exact (Postgres adds them), and a skipped product's views are left out", async () => {
    const topic = uniqueName("writer");
    const [big, other] = await seedProducts(ctx.db, 2, "writer-exact");
    const half = 5_000_000_000_000_001; // each exact; the sum below (10 000 000 000 000 001) is not a double's
    const batch: Batch = {
      slices: [slice(0, NO_OFFSET, 1, { [big!]: half, [other!]: 2 }), slice(1, NO_OFFSET, 1, { [big!]: half - 1 })],
      products: 3,
      views: 2 * half + 1,
    };
    try {
      const res = await flush(ctx.db.db, topic, batch, TOPIC_ID, KEYS, { skip: (id) => id === other });
      expect(res).toMatchObject({ skipped: 2, fenced: [] });
      const rows = await ctx.db.sql<{ id: string; n: string }[]>`
        SELECT id, view_count::text AS n FROM products WHERE id IN (${big!}, ${other!})`;
      expect(Object.fromEntries(rows.map((r) => [r.id, r.n]))).toEqual({ [big!]: "10000000000000001", [other!]: "0" });
    } finally {
      await ctx.db.sql`DELETE FROM products WHERE id = ${big!}`;
    }
  });

  test("a dry run applies nothing and says it reached its end; a refused one says why", async () => {
    const topic = uniqueName("writer");
    const [full, fine] = await seedProducts(ctx.db, 2, "writer-dry");
    await ctx.db.sql`UPDATE products SET view_count = 9223372036854775807 WHERE id = ${full!}`;
    try {
      const batch: Batch = { slices: [slice(0, NO_OFFSET, 4, { [full!]: 1, [fine!]: 1 })], products: 2, views: 2 };
      const dry = (only: string[]) =>
        flush(ctx.db.db, topic, batch, TOPIC_ID, KEYS, { skip: (id) => !only.includes(id), dryRun: true }).catch((e: unknown) => e);
      expect(isDryRunEnd(await dry([fine!]))).toBe(true);
      const refused = await dry([full!, fine!]);
      expect([isDryRunEnd(refused), isDataError(refused)]).toEqual([false, true]);
      expect(isDataError(await flush(ctx.db.db, topic, batch, TOPIC_ID, KEYS).catch((e: unknown) => e))).toBe(true);
      expect((await viewCounts(ctx.db, [fine!])).get(fine!)).toBe(0);
      expect((await loadOffsets(ctx.db.db, topic, [0])).get(0)!.next).toBe(NO_OFFSET);
    } finally {
      await ctx.db.sql`DELETE FROM products WHERE id = ${full!}`;
    }
  });

  test("the flush's NOTIFY names the 100 changed products that rank highest, with their new counts and its rows' updated_at; a fenced flush names none", async () => {
    const topic = uniqueName("writer");
    const many = await seedProducts(ctx.db, 150, "notify");
    const notes: string[] = [];
    const sub = await ctx.db.sql.listen(FLUSH_CHANNEL, (payload) => void notes.push(payload));
    try {
      // Product i gets i + 1 views: the 100 named must be the last 100, each with its count.
      const counts = Object.fromEntries(many.map((id, i) => [id, i + 1]));
      const batch: Batch = { slices: [slice(0, NO_OFFSET, 150, counts)], products: 150, views: (150 * 151) / 2 };
      await flush(ctx.db.db, topic, batch, TOPIC_ID, KEYS);
      const mine = await waitFor("the flush's NOTIFY", () => notes.find((n) => n.includes(many[149]!)));
      const notice = parseFlush(mine)!;
      const named = new Map(notice.items.map((i) => [i.id, i.count]));
      expect(named.size).toBe(100);
      for (let i = 50; i < 150; i++) expect(named.get(many[i]!)).toBe(i + 1);
      // The time it gives is the updated_at the flush wrote, as the API reads and shows it.
      const product = await getProduct(ctx.db.db, many[149]!);
      expect(new Date(notice.at!).toISOString()).toBe(product!.updated_at);
      // The same batch again is fenced: nothing changed, nothing announced.
      const seen = notes.length;
      expect((await flush(ctx.db.db, topic, batch, TOPIC_ID, KEYS)).fenced).toHaveLength(1);
      await flush(ctx.db.db, topic, { slices: [slice(0, 150, 151, { [many[0]!]: 1 })], products: 1, views: 1 }, TOPIC_ID, KEYS);
      const next = await waitFor("the next flush's NOTIFY", () => notes.slice(seen).find((n) => n.includes(many[0]!)));
      expect(parseFlush(next)?.items).toEqual([{ id: many[0]!, count: 2 }]);
      expect(notes.slice(seen).filter((n) => n.includes(many[149]!))).toEqual([]);
    } finally {
      await sub.unlisten();
    }
  });

  test("a slice read from another topic id is refused even where the offsets agree", async () => {
    const topic = uniqueName("writer");
    const before = await viewCounts(ctx.db, ids);
    await flush(ctx.db.db, topic, { slices: [slice(0, NO_OFFSET, 10, { [ids[0]!]: 1 })], products: 1, views: 1 }, TOPIC_ID, KEYS);
    // The topic was recreated: offset 10 of the new log is another message than offset 10 of the old one.
    const other = await flush(
      ctx.db.db,
      topic,
      { slices: [slice(0, 10, 12, { [ids[0]!]: 2 })], products: 1, views: 2 },
      "22222222-2222-4222-8222-222222222222",
      KEYS,
    );
    expect(other.fenced).toEqual([{ partition: 0, stored: 10 }]);
    expect((await viewCounts(ctx.db, ids)).get(ids[0]!)! - before.get(ids[0]!)!).toBe(1);
  });

  test("a batch over several partitions of which one is fenced applies exactly the others' views, a product in both included", async () => {
    const topic = uniqueName("writer");
    const before = await viewCounts(ctx.db, ids);
    // Partition 0 moved on to 10 under another worker; this one still holds a slice built from offset 4.
    await flush(ctx.db.db, topic, { slices: [slice(0, NO_OFFSET, 10, { [ids[2]!]: 1 })], products: 1, views: 1 }, TOPIC_ID, KEYS);
    const batch: Batch = {
      slices: [
        slice(0, 4, 9, { [ids[0]!]: 5, [ids[1]!]: 7 }),
        slice(1, NO_OFFSET, 2, { [ids[0]!]: 2 }),
        slice(2, NO_OFFSET, 3, { [ids[1]!]: 1 }),
      ],
      products: 2,
      views: 15,
    };
    const res = await flush(ctx.db.db, topic, batch, TOPIC_ID, KEYS);
    expect(res).toMatchObject({ views: 3, rowsUpdated: 2, fenced: [{ partition: 0, stored: 10 }] });
    const after = await viewCounts(ctx.db, ids);
    expect(after.get(ids[0]!)! - before.get(ids[0]!)!).toBe(2);
    expect(after.get(ids[1]!)! - before.get(ids[1]!)!).toBe(1);
    expect(after.get(ids[2]!)! - before.get(ids[2]!)!).toBe(1);
    expect(await loadOffsets(ctx.db.db, topic, [0, 1, 2])).toEqual(
      new Map([
        [0, { next: 10, topicId: TOPIC_ID }],
        [1, { next: 2, topicId: TOPIC_ID }],
        [2, { next: 3, topicId: TOPIC_ID }],
      ]),
    );
  });

  test("the same batch flushed twice at once (an abandoned write and its retry) is applied once", async () => {
    const topic = uniqueName("writer");
    const before = await viewCounts(ctx.db, ids);
    await flush(ctx.db.db, topic, { slices: [slice(0, NO_OFFSET, 4, { [ids[0]!]: 1 })], products: 1, views: 1 }, TOPIC_ID, KEYS);
    const batch: Batch = { slices: [slice(0, 4, 9, { [ids[0]!]: 5 }), slice(1, NO_OFFSET, 2, { [ids[1]!]: 2 })], products: 2, views: 7 };
    const results = await Promise.all([1, 2, 3].map(() => flush(ctx.db.db, topic, batch, TOPIC_ID, KEYS)));
    // Each partition applied by exactly one of the three, the others fenced at the offset it stored.
    for (const p of [0, 1]) {
      expect(results.filter((r) => !r.fenced.some((f) => f.partition === p))).toHaveLength(1);
    }
    expect(results.reduce((n, r) => n + r.views, 0)).toBe(7);
    const after = await viewCounts(ctx.db, ids);
    expect(after.get(ids[0]!)! - before.get(ids[0]!)!).toBe(6);
    expect(after.get(ids[1]!)! - before.get(ids[1]!)!).toBe(2);
    expect(await loadOffsets(ctx.db.db, topic, [0, 1])).toEqual(
      new Map([
        [0, { next: 9, topicId: TOPIC_ID }],
        [1, { next: 2, topicId: TOPIC_ID }],
      ]),
    );
  });

  test("a flush whose backend is terminated mid-way applies nothing; sent again, it applies once", async () => {
    const topic = uniqueName("writer");
    const before = await viewCounts(ctx.db, ids);
    await flush(ctx.db.db, topic, { slices: [slice(0, NO_OFFSET, 1, { [ids[2]!]: 1 })], products: 1, views: 1 }, TOPIC_ID, KEYS);
    const batch: Batch = { slices: [slice(0, 1, 3, { [ids[2]!]: 10 })], products: 1, views: 10 };
    // Another session holds the offset row, so the flush is parked inside its statement when it is killed.
    const release = Promise.withResolvers<void>();
    const locked = Promise.withResolvers<void>();
    const holder = ctx.db.sql.begin(async (tx) => {
      await tx`SELECT 1 FROM view_offsets WHERE topic = ${topic} AND partition = 0 FOR UPDATE`;
      locked.resolve();
      await release.promise;
    });
    await locked.promise;
    const attempt = flush(ctx.db.db, topic, batch, TOPIC_ID, KEYS);
    attempt.catch(() => {});
    await waitFor(
      "the flush waiting on the row lock",
      async () => {
        const [r] = await ctx.db.sql<{ pid: number }[]>`
        SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%view_offsets%' AND query LIKE '%unnest%'`;
        return r ? ctx.db.sql`SELECT pg_terminate_backend(${r.pid})` : undefined;
      },
      20_000,
      20,
    );
    expect(
      await bounded(
        "the killed flush",
        attempt.then(
          () => "applied",
          () => "rejected",
        ),
        20_000,
      ),
    ).toBe("rejected");
    release.resolve();
    await bounded("lock holder", holder);
    expect((await viewCounts(ctx.db, ids)).get(ids[2]!)! - before.get(ids[2]!)!).toBe(1);
    expect((await flush(ctx.db.db, topic, batch, TOPIC_ID, KEYS)).views).toBe(10);
    expect((await flush(ctx.db.db, topic, batch, TOPIC_ID, KEYS)).fenced).toEqual([{ partition: 0, stored: 3 }]);
    expect((await viewCounts(ctx.db, ids)).get(ids[2]!)! - before.get(ids[2]!)!).toBe(11);
  });

  describe("keyed requests (Idempotency-Key)", () => {
    let n = 0;
    /** A fresh key digest per call: tests share one view_keys table. */
    const key = () => (Date.now() * 1000 + n++).toString(16).padStart(32, "0").slice(-32);
    const FP = `${"0".repeat(31)}1`;
    const keyed = (k: string, id: string, count: number, fp = FP) => ({ key: k, fp, views: [{ product_id: id, count }] });
    const keyedSlice = (partition: number, base: number, next: number, entries: KeyedViews[]) => ({
      ...slice(partition, base, next, {}),
      keyed: entries,
      views: entries.reduce((a, e) => a + e.views[0]!.count, 0),
    });
    /** Flushes one partition's keyed slice. */
    const flushKeyed = (topic: string, partition: number, base: number, next: number, entries: KeyedViews[], keys = KEYS) => {
      const sl = keyedSlice(partition, base, next, entries);
      return flush(ctx.db.db, topic, { slices: [sl], products: entries.length, views: sl.views }, TOPIC_ID, keys);
    };

    test("a key counted once is not counted again by a later flush, nor twice within one batch", async () => {
      const topic = uniqueName("writer");
      const before = await viewCounts(ctx.db, ids);
      const k = key();
      const first = await flushKeyed(topic, 0, NO_OFFSET, 2, [keyed(k, ids[0]!, 3), keyed(k, ids[0]!, 3)]);
      expect(first).toMatchObject({ views: 3, repeats: 1, mismatched: 0 });
      const again = await flushKeyed(topic, 0, 2, 3, [keyed(k, ids[0]!, 3)]);
      expect(again).toMatchObject({ views: 0, repeats: 1, mismatched: 0, fenced: [] });
      expect((await loadOffsets(ctx.db.db, topic, [0])).get(0)!.next).toBe(3); // the offset moves on all the same
      expect((await viewCounts(ctx.db, ids)).get(ids[0]!)! - before.get(ids[0]!)!).toBe(3);
    });

    test("the same key on another partition (partitions added between attempts) is still counted once", async () => {
      const topic = uniqueName("writer");
      const before = await viewCounts(ctx.db, ids);
      const k = key();
      await flushKeyed(topic, 0, NO_OFFSET, 1, [keyed(k, ids[1]!, 1)]);
      const res = await flushKeyed(topic, 5, NO_OFFSET, 1, [keyed(k, ids[1]!, 1)]);
      expect(res).toMatchObject({ views: 0, repeats: 1 });
      expect((await viewCounts(ctx.db, ids)).get(ids[1]!)! - before.get(ids[1]!)!).toBe(1);
    });

    test("a repeat with another body is not counted, and is reported as a mismatch", async () => {
      const topic = uniqueName("writer");
      const before = await viewCounts(ctx.db, ids);
      const k = key();
      await flushKeyed(topic, 0, NO_OFFSET, 1, [keyed(k, ids[0]!, 1)]);
      const res = await flushKeyed(topic, 0, 1, 2, [keyed(k, ids[2]!, 7, `${"0".repeat(31)}2`)]);
      expect(res).toMatchObject({ views: 0, repeats: 1, mismatched: 1 });
      const after = await viewCounts(ctx.db, ids);
      expect(after.get(ids[0]!)! - before.get(ids[0]!)!).toBe(1);
      expect(after.get(ids[2]!)! - before.get(ids[2]!)!).toBe(0);
    });

    test("a fenced slice records none of its keys: the worker that owns the partition counts them", async () => {
      const topic = uniqueName("writer");
      const before = await viewCounts(ctx.db, ids);
      const k = key();
      await flush(ctx.db.db, topic, { slices: [slice(0, NO_OFFSET, 5, { [ids[0]!]: 1 })], products: 1, views: 1 }, TOPIC_ID, KEYS);
      const zombie = await flushKeyed(topic, 0, NO_OFFSET, 6, [keyed(k, ids[1]!, 2)]);
      expect(zombie).toMatchObject({ views: 0, repeats: 0, fenced: [{ partition: 0, stored: 5 }] });
      const owner = await flushKeyed(topic, 0, 5, 6, [keyed(k, ids[1]!, 2)]);
      expect(owner).toMatchObject({ views: 2, repeats: 0 });
      expect((await viewCounts(ctx.db, ids)).get(ids[1]!)! - before.get(ids[1]!)!).toBe(2);
    });

    test("the window runs between the attempts' acceptance times, not their flushes: a lagging worker still refuses a repeat", async () => {
      const topic = uniqueName("writer");
      const before = await viewCounts(ctx.db, ids);
      const k = key();
      const window = { windowMs: 1000 };
      const t1 = Date.now() - 10_000;
      // Accepted 10 s ago, flushed only now: the worker lagged.
      await flushKeyed(topic, 0, NO_OFFSET, 1, [{ ...keyed(k, ids[0]!, 1), at: t1 }], window);
      // Its retry was accepted half a second later, inside the window, and is flushed once the stored window has
      // ended by the database's clock.
      await waitFor(
        "the stored window to have ended",
        async () => (await ctx.db.sql`SELECT 1 FROM view_keys WHERE key = ${k}::uuid AND expires_at < now()`).length > 0 || undefined,
        10_000,
        20,
      );
      const repeat = await flushKeyed(topic, 0, 1, 2, [{ ...keyed(k, ids[0]!, 1), at: t1 + 500 }], window);
      expect(repeat).toMatchObject({ views: 0, repeats: 1 });
      // An attempt accepted after the window counts again.
      const later = await flushKeyed(topic, 0, 2, 3, [{ ...keyed(k, ids[0]!, 1), at: t1 + 1500 }], window);
      expect(later).toMatchObject({ views: 1, repeats: 0 });
      expect((await viewCounts(ctx.db, ids)).get(ids[0]!)! - before.get(ids[0]!)!).toBe(2);
      // Expiry keeps an ended key for the grace it is given (a repeat may still be on its way), then deletes it.
      while ((await expireKeys(ctx.db.db, 1000, 3_600_000)) === 1000) {}
      expect((await ctx.db.sql`SELECT 1 FROM view_keys WHERE key = ${k}::uuid`).length).toBe(1);
      while ((await expireKeys(ctx.db.db, 1000, 0)) === 1000) {}
      expect((await ctx.db.sql`SELECT 1 FROM view_keys WHERE key = ${k}::uuid`).length).toBe(0);
    });

    test("expiry never deletes a key a concurrent flush renewed while the delete waited on its row", async () => {
      const topic = uniqueName("writer");
      const k = key();
      await flushKeyed(topic, 0, NO_OFFSET, 1, [keyed(k, ids[3]!, 1)], { windowMs: 0 });
      // The renewing flush, held open on its own connection: it holds the key's row lock, renewed.
      const renewer = await ctx.db.sql.reserve();
      try {
        await renewer`BEGIN`;
        await renewer`UPDATE view_keys SET expires_at = now() + interval '1 hour' WHERE key = ${k}::uuid`;
        const expiring = expireKeys(ctx.db.db, 1000);
        // The delete has found the expired key and now waits for the renewer's lock.
        await waitFor(
          "the expiry waiting on the key's row",
          async () =>
            (await ctx.db.sql`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%DELETE FROM view_keys%'`)
              .length > 0 || undefined,
          10_000,
          20,
        );
        await renewer`COMMIT`;
        await bounded("expireKeys", expiring);
      } finally {
        renewer.release();
      }
      const rows = await ctx.db.sql`SELECT 1 FROM view_keys WHERE key = ${k}::uuid`;
      expect(rows.length).toBe(1);
    });

    test("once its window has passed a key counts again, and expired keys are deleted", async () => {
      const topic = uniqueName("writer");
      const before = await viewCounts(ctx.db, ids);
      const k = key();
      const noWindow = { windowMs: 0 };
      await flushKeyed(topic, 0, NO_OFFSET, 1, [keyed(k, ids[2]!, 1)], noWindow);
      const later = await flushKeyed(topic, 0, 1, 2, [keyed(k, ids[2]!, 1)]);
      expect(later).toMatchObject({ views: 1, repeats: 0 });
      expect((await viewCounts(ctx.db, ids)).get(ids[2]!)! - before.get(ids[2]!)!).toBe(2);
      // Re-stored with the full window: not expired, so not deleted.
      const gone = key();
      await flushKeyed(topic, 1, NO_OFFSET, 1, [keyed(gone, ids[2]!, 1)], noWindow);
      while ((await expireKeys(ctx.db.db, 1000)) === 1000) {}
      const [row] = await ctx.db.sql<
        { keys: string[] }[]
      >`SELECT array_agg(key::text) AS keys FROM view_keys WHERE key IN (${k}::uuid, ${gone}::uuid)`;
      expect(row!.keys).toEqual([`${k.slice(0, 8)}-${k.slice(8, 12)}-${k.slice(12, 16)}-${k.slice(16, 20)}-${k.slice(20)}`]);
    });
  });
});
