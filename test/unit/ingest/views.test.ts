import { describe, expect, test } from "bun:test";
import { AppError } from "../../../src/errors.ts";
import { createViewRecorder } from "../../../src/ingest/views.ts";
import type { ViewProducer } from "../../../src/ingest/producer.ts";

const ID = "00000000-0000-4000-8000-000000000001";

describe("view recorder", () => {
  test("a view refused because the catalog cannot be read says written: no, and nothing is produced", async () => {
    const published: unknown[] = [];
    const producer: ViewProducer = { publish: async (e) => void published.push(e), setPartitions: () => {}, close: async () => {} };
    const recorder = createViewRecorder(
      {
        unknown: () =>
          Promise.reject(new AppError("database_unavailable", "the database is temporarily unavailable; retry later", { retryable: true })),
      } as never,
      producer,
    );
    const err = await recorder.record([{ product_id: ID, count: 1 }]).then(
      () => null,
      (e) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: "database_unavailable", retryable: true, details: { written: "no" } });
    expect(published).toEqual([]);
  });
});
