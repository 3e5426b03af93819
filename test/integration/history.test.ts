import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLogger } from "../../src/log.ts";
import { Registry } from "../../src/metrics.ts";
import { createProducer, type ViewProducer } from "../../src/ingest/producer.ts";
import { windowViews } from "../../src/db/history.ts";
import { maintainPartitions } from "../../src/db/history-partitions.ts";
import { seedProducts, viewCounts } from "./harness/db.ts";
import { post, TRUSTED } from "./harness/http.ts";
import { testEnv, useStack } from "./harness/stack.ts";
import { waitFor } from "./harness/wait.ts";

// The views history with a clock the test controls: the API's producer is given the acceptance time, which travels
// in the Kafka message to the worker's flush; windows are read as they stand at a chosen "now".

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe("views history", () => {
  const stack = useStack(testEnv({ HISTORY_FOLD_INTERVAL_MS: "200", TOP_WINDOW_REFRESH_MS: "500" }));
  let producer: ViewProducer;
  let clock = 0;
  const api = () => `http://127.0.0.1:${stack.api.port}/api/v1/products`;
  const publishAt = (at: number, id: string, count: number) => {
    clock = at;
    return producer.publish([{ product_id: id, count }]);
  };
  const series = async (id: string, query: string) => {
    const res = await fetch(`${api()}/${id}/views?${query}`);
    expect(res.status).toBe(200);
    return (await res.json()) as { total: number; points: Array<{ t: string; views: number }> };
  };
  const iso = (ms: number) => new Date(ms).toISOString();

  beforeAll(() => {
    producer = createProducer(stack.ctx.config.kafka, stack.ctx.config.producer, createLogger("error", "test"), new Registry(), {
      now: () => clock,
    });
  });
  afterAll(async () => {
    await producer.close();
  });

  test("a view counts in the minute the API accepted it, however late it is flushed; edges exact; hours and days sum to the count", async () => {
    const [p] = await seedProducts(stack.ctx.db, 1, "history-edges");
    // A whole hour five hours ago: these views reach the worker hours after they were accepted, as after an outage.
    const T = Math.floor(Date.now() / HOUR) * HOUR - 5 * HOUR;
    await publishAt(T - 1, p!, 2); // the last millisecond of the hour before
    await publishAt(T, p!, 3); // the first of the hour
    await publishAt(T + MINUTE - 1, p!, 4); // the minute's last millisecond
    await publishAt(T + MINUTE, p!, 5); // the next minute
    await waitFor("the views counted", async () => (await viewCounts(stack.ctx.db, [p!])).get(p!) === 14);

    const minutes = await series(p!, `bucket=minute&from=${iso(T - MINUTE)}&to=${iso(T + 2 * MINUTE)}`);
    expect(minutes.points).toEqual([
      { t: iso(T - MINUTE), views: 2 },
      { t: iso(T), views: 7 },
      { t: iso(T + MINUTE), views: 5 },
      { t: iso(T + 2 * MINUTE), views: 0 },
    ]);
    // Hours: exact before and after the fold (a read adds the minutes not folded yet); wait for the fold to be sure
    // the folded path is what is read.
    await waitFor("the minutes folded", async () => {
      const [r] = await stack.ctx.db.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM view_minutes WHERE product_id = ${p!} AND views > folded`;
      return r!.n === 0;
    });
    const hours = await series(p!, `bucket=hour&from=${iso(T - HOUR)}&to=${iso(T)}`);
    expect(hours.points).toEqual([
      { t: iso(T - HOUR), views: 2 },
      { t: iso(T), views: 12 },
    ]);
    const days = await series(p!, "bucket=day");
    expect(days.points).toHaveLength(30);
    expect(days.total).toBe(14);
  });

  test("windows count whole buckets: a minute leaves the 1 h window when the window slides past its edge; hours likewise for 24 h", async () => {
    const [p] = await seedProducts(stack.ctx.db, 1, "history-window");
    const M = Math.floor(Date.now() / MINUTE) * MINUTE - 30 * MINUTE;
    await publishAt(M + 10_000, p!, 6);
    await waitFor("the views counted", async () => (await viewCounts(stack.ctx.db, [p!])).get(p!) === 6);
    const in1h = (now: number) => windowViews(stack.ctx.db.db, "1h", now, { ids: [p!] });
    expect(await in1h(M + 59 * MINUTE + 59_999)).toEqual([{ id: p!, views: 6 }]); // M is the window's first minute
    expect(await in1h(M + 60 * MINUTE)).toEqual([]); // the window slid one minute: M is out
    expect(await in1h(M - 1)).toEqual([]); // before it was accepted
    const H = Math.floor(M / HOUR) * HOUR;
    const in24h = (now: number) => windowViews(stack.ctx.db.db, "24h", now, { ids: [p!] });
    expect(await in24h(H + 24 * HOUR - 1)).toEqual([{ id: p!, views: 6 }]);
    expect(await in24h(H + 24 * HOUR)).toEqual([]);
    expect(await windowViews(stack.ctx.db.db, "7d", H + 168 * HOUR - 1, { ids: [p!] })).toEqual([{ id: p!, views: 6 }]);
  });

  test("GET /top?window=1h ranks the views accepted in the last hour, pushed on the stream too; a late view counts in 24h only", async () => {
    const [fresh, late] = await seedProducts(stack.ctx.db, 2, "history-top");
    // 50 000 views now: more than any other test's product holds in the last hour, so it is listed.
    const res = await post(`${api()}/views`, { views: Array.from({ length: 50 }, () => ({ product_id: fresh!, count: 1000 })) }, TRUSTED);
    expect(res.status).toBe(202);
    // Far more than any product other tests created with a count in the last day (those go in the hour they were created).
    await publishAt(Date.now() - 2 * HOUR, late!, 5_000_000);
    const listed = (window: string, id: string) => async () => {
      const r = await fetch(`${api()}/top?window=${window}&limit=100`);
      const list = (await r.json()) as Array<{ id: string; window: string; window_views: number; view_count: number }>;
      return list.find((x) => x.id === id);
    };
    expect(await waitFor("fresh in the 1 h window", listed("1h", fresh!))).toMatchObject({ window: "1h", window_views: 50_000 });
    expect(await waitFor("late in the 24 h window", listed("24h", late!))).toMatchObject({ window: "24h", window_views: 5_000_000 });
    expect(await listed("1h", late!)()).toBeUndefined();

    const stream = await fetch(`${api()}/top/stream?window=1h&limit=100`);
    const reader = stream.body!.getReader();
    let text = "";
    await waitFor("a windowed list on the stream", async () => {
      text += new TextDecoder().decode((await reader.read()).value);
      return text.includes(`"id":"${fresh}"`) && text.includes('"window":"1h"');
    });
    await reader.cancel();
  });

  test("bad windows and series queries are 400 with a JSON error; an unknown product is 404", async () => {
    const [p] = await seedProducts(stack.ctx.db, 1, "history-bad");
    for (const q of ["window=2h", "window=1h&window=24h", "window=1h&by=unique_viewers"]) {
      const r = await fetch(`${api()}/top?${q}`);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { code: string }).code).toBe("invalid_request");
    }
    for (const q of [
      "bucket=second",
      "from=yesterday",
      "bucket=minute&from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z",
      "from=2026-12-07T10:00:00Z&to=2026-12-06T10:00:00Z",
    ]) {
      const r = await fetch(`${api()}/${p}/views?${q}`);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { code: string }).code).toBe("invalid_request");
    }
    expect((await fetch(`${api()}/${crypto.randomUUID()}/views`)).status).toBe(404);
  });

  test("retention drops whole partitions: old ones go with their rows, current ones stay", async () => {
    const db = stack.ctx.db.sql;
    const old = Date.UTC(2020, 0, 3);
    // Made as the upkeep made them on 2020-01-03: that day's minute partitions and that month's hour one.
    const made = await maintainPartitions(db, old, { minuteDays: 1, hourDays: 8 });
    expect(made.created).toContain("view_minutes_p20200103");
    expect(made.created).toContain("view_hours_p202001");
    await db`INSERT INTO view_minutes (product_id, minute, views) VALUES (${crypto.randomUUID()}, '2020-01-03T10:00:00Z', 1)`;
    const now = await maintainPartitions(db, Date.now(), stack.ctx.config.history);
    expect(now.dropped).toContain("view_minutes_p20200103");
    expect(now.dropped).toContain("view_hours_p202001");
    const [r] = await db<{ n: number }[]>`SELECT count(*)::int AS n FROM view_minutes WHERE minute < '2021-01-01'`;
    expect(r!.n).toBe(0);
    const today = new Date().toISOString().slice(0, 10).replaceAll("-", "");
    const left = await db<{ name: string }[]>`
      SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'view_minutes'::regclass`;
    expect(left.map((x) => x.name)).toContain(`view_minutes_p${today}`);
  });
});
