import { describe, expect, test } from "bun:test";
import { createViewerHasher } from "../../../src/ingest/viewer.ts";

const DAY = 86_400_000;

describe("viewer hash", () => {
  test("one address and User-Agent is one viewer for a UTC day, another the next day; either part tells viewers apart", () => {
    const { viewerOf, ephemeral } = createViewerHasher("s".repeat(32));
    expect(ephemeral).toBe(false);
    const a = viewerOf("203.0.113.5", "Firefox", 5 * DAY);
    expect(viewerOf("203.0.113.5", "Firefox", 6 * DAY - 1)).toEqual(a);
    expect(viewerOf("203.0.113.5", "Firefox", 6 * DAY).id).not.toBe(a.id);
    expect(viewerOf("203.0.113.6", "Firefox", 5 * DAY).id).not.toBe(a.id);
    expect(viewerOf("203.0.113.5", "Chrome", 5 * DAY).id).not.toBe(a.id);
    // The separator keeps the parts apart: address "a" + agent "b\nc" is not address "a\nb" + agent "c".
    expect(viewerOf("a", "b\nc", 0).id).not.toBe(viewerOf("a\nb", "c", 0).id);
    expect(BigInt.asIntN(64, (BigInt(a.hi) << 32n) | BigInt(a.lo >>> 0))).toBe(a.id);
  });

  test("processes with the same secret agree; another secret, or none, gives other viewers", () => {
    const one = createViewerHasher("s".repeat(32)).viewerOf("203.0.113.5", "Firefox", 0);
    expect(createViewerHasher("s".repeat(32)).viewerOf("203.0.113.5", "Firefox", 0)).toEqual(one);
    expect(createViewerHasher("t".repeat(32)).viewerOf("203.0.113.5", "Firefox", 0).id).not.toBe(one.id);
    const random = createViewerHasher(undefined);
    expect(random.ephemeral).toBe(true);
    expect(random.viewerOf("203.0.113.5", "Firefox", 0).id).not.toBe(one.id);
  });
});
