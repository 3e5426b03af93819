import { describe, expect, test } from "bun:test";
import { AppError } from "../../../src/errors.ts";
import { createKeyMemory, type KeySeen } from "../../../src/ingest/idempotency.ts";
import type { KeyTag } from "../../../src/ingest/lane-batch.ts";
import { createViewRecorder } from "../../../src/ingest/views.ts";
import type { ViewProducer } from "../../../src/ingest/producer.ts";

const ID = "00000000-0000-4000-8000-000000000001";
const OTHER = "00000000-0000-4000-8000-000000000002";
const known = { unknown: async () => [] } as never;

function setup(publish: ViewProducer["publish"], catalog = known) {
  const repeats: KeySeen[] = [];
  const producer: ViewProducer = { publish, setPartitions: () => {}, close: async () => {} };
  const memory = createKeyMemory({ windowMs: 60_000, maxKeys: 100 });
  const recorder = createViewRecorder(catalog, producer, { memory, onRepeat: (s) => void repeats.push(s) }, () => {
    throw new Error("no public callers here");
  });
  return { recorder, repeats };
}
const failure = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e) => e as AppError,
  );

describe("view recorder", () => {
  test("a view refused because the catalog cannot be read says written: no, and nothing is produced", async () => {
    const published: unknown[] = [];
    const { recorder } = setup(async (e) => void published.push(e), {
      unknown: () =>
        Promise.reject(new AppError("database_unavailable", "the database is temporarily unavailable; retry later", { retryable: true })),
    } as never);
    const err = await failure(recorder.record([{ product_id: ID, count: 1 }]));
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: "database_unavailable", retryable: true, details: { written: "no" } });
    expect(published).toEqual([]);
  });

  test("a keyed request travels under its key's tag; its repeat after a 202 is answered without producing again", async () => {
    const tags: (KeyTag | undefined)[] = [];
    const { recorder, repeats } = setup(async (_, tag) => void tags.push(tag));
    await recorder.record([{ product_id: ID, count: 1 }], "key-1");
    await recorder.record([{ product_id: ID, count: 1 }], "key-1");
    await recorder.record([{ product_id: ID, count: 1 }]);
    expect(tags).toHaveLength(2);
    expect(tags[0]!.key).toMatch(/^[0-9a-f]{32}$/);
    expect(tags[1]).toBeUndefined();
    expect(repeats).toEqual(["accepted"]);
  });

  test("a repeat while the first attempt is in flight is 409 (retryable); with another body it is 422", async () => {
    const gate = Promise.withResolvers<void>();
    const { recorder, repeats } = setup(() => gate.promise);
    const first = recorder.record([{ product_id: ID, count: 1 }], "key-1");
    expect(await failure(recorder.record([{ product_id: ID, count: 1 }], "key-1"))).toMatchObject({
      code: "idempotency_key_in_flight",
      retryable: true,
    });
    expect(await failure(recorder.record([{ product_id: OTHER, count: 1 }], "key-1"))).toMatchObject({ code: "idempotency_key_reused" });
    gate.resolve();
    await first;
    expect(await failure(recorder.record([{ product_id: OTHER, count: 1 }], "key-1"))).toMatchObject({ code: "idempotency_key_reused" });
    expect(repeats).toEqual(["in_flight", "mismatch", "mismatch"]);
  });

  test("after a 503 the retry with the same key is produced again, under the same tag (the worker counts it once)", async () => {
    const tags: KeyTag[] = [];
    let fail = true;
    const { recorder } = setup(async (_, tag) => {
      tags.push(tag!);
      if (fail) throw new AppError("ingest_unavailable", "kafka did not confirm the view; retry later", { retryable: true });
    });
    expect(await failure(recorder.record([{ product_id: ID, count: 1 }], "key-1"))).toMatchObject({ code: "ingest_unavailable" });
    fail = false;
    await recorder.record([{ product_id: ID, count: 1 }], "key-1");
    expect(tags).toHaveLength(2);
    // The same digests; each attempt carries its own acceptance time (the worker's window runs from it).
    expect({ key: tags[1]!.key, fp: tags[1]!.fp }).toEqual({ key: tags[0]!.key, fp: tags[0]!.fp });
    expect(tags[1]!.at!).toBeGreaterThanOrEqual(tags[0]!.at!);
  });

  test("a keyed request naming an unknown product is 404 and its key stays free", async () => {
    let unknown = [ID];
    const tags: unknown[] = [];
    const { recorder } = setup(async (_, tag) => void tags.push(tag), { unknown: async () => unknown } as never);
    expect(await failure(recorder.record([{ product_id: ID, count: 1 }], "key-1"))).toMatchObject({ code: "product_not_found" });
    unknown = [];
    await recorder.record([{ product_id: ID, count: 1 }], "key-1");
    expect(tags).toHaveLength(1);
  });
});
