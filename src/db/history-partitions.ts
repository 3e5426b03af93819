import type { Sql } from "./client.ts";

// The history tables' partitions (sql/0005_view_history.sql): view_minutes by UTC day, view_hours by UTC month.
// Retention drops whole partitions, never rows: a partition goes once all of it is older than its table keeps.
// DDL on a partition locks its parent; a short lock_timeout makes this give way to flushes and try again later.

export interface Retention {
  /** Days of minute rows kept (the 1 h window and minute series need one hour; the rest is for looking back). */
  minuteDays: number;
  /** Days of hour rows kept (the 24 h and 7 d windows, hour and day series). */
  hourDays: number;
}

/**
 * A minute row is updated by every flush that adds to it within its minute: room on each page keeps those updates HOT
 * (no new primary-key entry each time), as for products.
 */
const STORAGE = { view_minutes: " WITH (fillfactor = 70)", view_hours: "" } as const;

/** Partitions made ahead of time, so a flush at midnight never meets a missing one. */
const AHEAD_DAYS = 3;
const DAY_MS = 86_400_000;

interface Range {
  table: "view_minutes" | "view_hours";
  name: string;
  from: Date;
  to: Date;
}

const pad = (n: number) => String(n).padStart(2, "0");
const dayStart = (ms: number) => new Date(Math.floor(ms / DAY_MS) * DAY_MS);
const monthStart = (d: Date, add = 0) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + add, 1));

function dayRange(from: Date): Range {
  const name = `view_minutes_p${from.getUTCFullYear()}${pad(from.getUTCMonth() + 1)}${pad(from.getUTCDate())}`;
  return { table: "view_minutes", name, from, to: new Date(from.getTime() + DAY_MS) };
}

function monthRange(from: Date): Range {
  return { table: "view_hours", name: `view_hours_p${from.getUTCFullYear()}${pad(from.getUTCMonth() + 1)}`, from, to: monthStart(from, 1) };
}

/** The oldest minute a flush may write: the first day of the minute partitions kept at `now`. */
export const oldestMinute = (now: number, r: Retention) => dayStart(now - r.minuteDays * DAY_MS);

/** Every partition that should exist at `now`: from the oldest kept to AHEAD_DAYS ahead. */
export function wantedPartitions(now: number, r: Retention): Range[] {
  const out: Range[] = [];
  for (let d = oldestMinute(now, r).getTime(); d <= now + AHEAD_DAYS * DAY_MS; d += DAY_MS) out.push(dayRange(new Date(d)));
  const last = new Date(now + AHEAD_DAYS * DAY_MS);
  for (let m = monthStart(new Date(now - r.hourDays * DAY_MS)); m <= last; m = monthStart(m, 1)) out.push(monthRange(m));
  return out;
}

/** Whether a partition (by its name) lies wholly before what the table keeps at `now`. */
export function expired(name: string, now: number, r: Retention): boolean {
  const day = /^view_minutes_p(\d{4})(\d{2})(\d{2})$/.exec(name);
  if (day) return Date.UTC(+day[1]!, +day[2]! - 1, +day[3]! + 1) <= oldestMinute(now, r).getTime();
  const month = /^view_hours_p(\d{4})(\d{2})$/.exec(name);
  if (month) return Date.UTC(+month[1]!, +month[2]!, 1) <= now - r.hourDays * DAY_MS;
  return false;
}

async function existing(sql: Sql): Promise<Set<string>> {
  const rows = await sql<{ name: string }[]>`
    SELECT c.relname AS name FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
    WHERE p.oid IN (to_regclass('view_minutes'), to_regclass('view_hours'))`;
  return new Set(rows.map((r) => r.name));
}

/** Creates the missing partitions and drops the expired ones; returns what it did. */
export async function maintainPartitions(sql: Sql, now: number, r: Retention): Promise<{ created: string[]; dropped: string[] }> {
  const have = await existing(sql);
  const created: string[] = [];
  for (const p of wantedPartitions(now, r)) {
    if (have.has(p.name)) continue;
    await sql.begin(async (tx) => {
      await tx`SET LOCAL lock_timeout = '2s'`;
      await tx.unsafe(
        `CREATE TABLE IF NOT EXISTS ${p.name} PARTITION OF ${p.table} FOR VALUES FROM ('${p.from.toISOString()}') TO ('${p.to.toISOString()}')${STORAGE[p.table]}`,
      );
    });
    created.push(p.name);
  }
  const dropped: string[] = [];
  for (const name of have) {
    if (!expired(name, now, r)) continue;
    await sql.begin(async (tx) => {
      await tx`SET LOCAL lock_timeout = '2s'`;
      await tx.unsafe(`DROP TABLE IF EXISTS ${name}`);
    });
    dropped.push(name);
  }
  return { created, dropped };
}
