import { describe, expect, test } from "bun:test";
import { parseSeries, parseWindow, windowStart, zeroFilled } from "../../../src/domain/history.ts";
import { expired, wantedPartitions } from "../../../src/db/history-partitions.ts";

const T = Date.UTC(2026, 11, 7, 12, 34, 20);

describe("history windows and series", () => {
  test("a window is whole buckets: the current one and those before it", () => {
    expect(new Date(windowStart("1h", T)).toISOString()).toBe("2026-12-07T11:35:00.000Z");
    expect(new Date(windowStart("24h", T)).toISOString()).toBe("2026-12-06T13:00:00.000Z");
    expect(new Date(windowStart("7d", T)).toISOString()).toBe("2026-11-30T13:00:00.000Z");
    expect(parseWindow(undefined)).toBe("all");
    expect(parseWindow("24h")).toBe("24h");
    expect(parseWindow("2h")).toEqual({ error: "window must be one of 1h, 24h, 7d, all" });
    expect(parseWindow(["1h", "1h"])).toEqual({ error: "window must be one of 1h, 24h, 7d, all" });
  });

  test("a series query: defaults, rounding down to the bucket, and bounds", () => {
    expect(parseSeries({}, T)).toEqual({ bucket: "hour", from: Date.UTC(2026, 11, 6, 13), to: Date.UTC(2026, 11, 7, 12) });
    expect(parseSeries({ bucket: "minute", from: "2026-12-07T12:00:59Z", to: "2026-12-07T12:02:00.000Z" }, T)).toEqual({
      bucket: "minute",
      from: Date.UTC(2026, 11, 7, 12, 0),
      to: Date.UTC(2026, 11, 7, 12, 2),
    });
    expect(parseSeries({ bucket: "minute", from: "2026-12-05T00:00:00Z" }, T)).toEqual({
      error: "at most 1440 minutes in one answer; narrow from..to",
    });
    expect(parseSeries({ from: "now" }, T)).toHaveProperty("error");
    expect(parseSeries({ to: ["2026-12-07", "2026-12-08"] }, T)).toHaveProperty("error");
    const q = { bucket: "day" as const, from: Date.UTC(2026, 11, 5), to: Date.UTC(2026, 11, 7) };
    expect(zeroFilled(new Map([[Date.UTC(2026, 11, 6), 4]]), q)).toEqual([
      { t: "2026-12-05T00:00:00.000Z", views: 0 },
      { t: "2026-12-06T00:00:00.000Z", views: 4 },
      { t: "2026-12-07T00:00:00.000Z", views: 0 },
    ]);
  });

  test("partitions: days of minutes and months of hours from the oldest kept to three days ahead; expired only when wholly old", () => {
    const names = wantedPartitions(T, { minuteDays: 2, hourDays: 40 }).map((p) => p.name);
    expect(names).toEqual([
      "view_minutes_p20261205",
      "view_minutes_p20261206",
      "view_minutes_p20261207",
      "view_minutes_p20261208",
      "view_minutes_p20261209",
      "view_minutes_p20261210",
      "view_hours_p202610",
      "view_hours_p202611",
      "view_hours_p202612",
    ]);
    const r = { minuteDays: 2, hourDays: 40 };
    expect(expired("view_minutes_p20261204", T, r)).toBe(true);
    expect(expired("view_minutes_p20261205", T, r)).toBe(false);
    expect(expired("view_hours_p202609", T, r)).toBe(true);
    expect(expired("view_hours_p202610", T, r)).toBe(false); // 2026-10-28 is inside it
    expect(expired("products", T, r)).toBe(false);
  });
});
