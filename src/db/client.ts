import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { ConnectionOptions } from "node:tls";
import postgres from "postgres";
import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import type { DbConfig } from "../config.ts";
import { orTimeout } from "../deadline.ts";
import { AppError } from "../errors.ts";
import * as schema from "./schema.ts";

export type Sql = postgres.Sql;
export type Db = PostgresJsDatabase<typeof schema>;

export interface Database {
  sql: Sql;
  db: Db;
  close(): Promise<void>;
}

/**
 * TLS to Postgres with a CA of one's own (DATABASE_SSL_CA): verified, the server's name or address included (given
 * as `host`: postgres.js leaves the name out for an address, and node:tls would then check "localhost").
 */
function tls(url: string, caFile: string): ConnectionOptions {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  return { ca: readFileSync(caFile, "utf8"), rejectUnauthorized: true, host, ...(isIP(host) ? {} : { servername: host }) };
}

export function connect(config: DbConfig, appName: string, statementTimeoutMs = 5000): Database {
  const sql = postgres(config.url, {
    ...(config.tls ? { ssl: tls(config.url, config.tls.caFile) } : {}),
    max: config.poolSize,
    idle_timeout: 30,
    connect_timeout: 5,
    onnotice: () => {},
    connection: { application_name: appName, statement_timeout: statementTimeoutMs },
  });
  return {
    sql,
    db: drizzle(sql, { schema }),
    close: () => sql.end({ timeout: 5 }),
  };
}

// Connection-level failures (server down, restarting, out of connections): the same request may succeed
// later, so they become a retryable 503, never a 500 with driver text.
const UNAVAILABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01",
  "57P02",
  "57P03",
  "08000",
  "08001",
  "08003",
  "08006",
  "53300",
  "57014",
]);

/** Whether `err` or one of its causes is a Postgres error that `match` accepts. */
export function hasPgError(err: unknown, match: (code: string, message: string) => boolean): boolean {
  // drizzle wraps the driver's error (DrizzleQueryError), so the code may sit one or two causes down.
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | null, depth = 0; e && depth < 4; depth++) {
    if (typeof e.code === "string" && match(e.code, String(e.message))) return true;
    e = e.cause as typeof e;
  }
  return false;
}

export const isUnavailable = (err: unknown): boolean => hasPgError(err, (code) => UNAVAILABLE.has(code));

const unavailableError = (cause?: unknown) =>
  new AppError("database_unavailable", "the database is temporarily unavailable; retry later", { cause, retryable: true });

/**
 * Maps connection failures to a retryable 503 and bounds the wait: while Postgres shuts down or restarts,
 * the driver can hold a query for seconds (reconnect attempts), and a request must not hang that long.
 */
export async function guard<T>(work: Promise<T>, timeoutMs = 2000): Promise<T> {
  try {
    return await orTimeout(work, timeoutMs, () => unavailableError("timed out"));
  } catch (cause) {
    if (cause instanceof AppError) throw cause;
    if (isUnavailable(cause)) throw unavailableError(cause);
    throw cause;
  }
}
