import type { Logger } from "../log.ts";

// librdkafka's log lines and errors, as the producer and the consumer read them from their queues (log.queue): through
// one pino child each, at most `perWindow` per window and a count of the rest, since an outage repeats them several a
// second per client. With KAFKA_DEBUG (raw) every line, for the debug contexts it names.

export type NativeLevel = "error" | "warn" | "info" | "debug" | "trace";

export interface LogLimiter {
  /** Logs the line unless this window already had `perWindow` of them (or all of them, when raw). */
  log(level: NativeLevel, fields: Record<string, unknown>, message: string, now: number): void;
  /** Closes the current window once it is over: logs how many lines it left out, if any. */
  tick(now: number): void;
}

/** librdkafka's lines through one pino child: an outage repeats them, so at most `perWindow` per window. */
export function createLogLimiter(log: Logger, opts: { perWindow?: number; windowMs?: number; raw?: boolean } = {}): LogLimiter {
  const perWindow = opts.raw ? Number.POSITIVE_INFINITY : (opts.perWindow ?? 5);
  const windowMs = opts.windowMs ?? 10_000;
  let windowStart = -Infinity;
  let logged = 0;
  let suppressed = 0;

  function tick(now: number) {
    if (now - windowStart < windowMs) return;
    if (suppressed > 0) log.warn({ suppressed, windowMs }, "more librdkafka lines in the last window were not logged");
    windowStart = now;
    logged = 0;
    suppressed = 0;
  }

  return {
    log(level, fields, message, now) {
      tick(now);
      if (logged >= perWindow) {
        suppressed++;
        return;
      }
      logged++;
      log[level](fields, message);
    },
    tick,
  };
}

/** A librdkafka log line's level (syslog's: 3 error, 4 warning, 6 info, 7 debug). */
export function levelOf(syslog: number): NativeLevel {
  if (syslog <= 3) return "error";
  if (syslog === 4) return "warn";
  if (syslog <= 6) return "info";
  return "debug";
}
