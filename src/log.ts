import pino, { type Logger } from "pino";
import type { LogLevel } from "./config.ts";

export type { Logger };

/**
 * A logger for lines an outage or a flood can repeat: at most one line per `everyMs`, the next one saying how many
 * were left out in between.
 */
export function limitedLog(log: Logger, everyMs: number) {
  let last = -Infinity;
  let suppressed = 0;
  return (level: "warn" | "error" | "info", fields: Record<string, unknown>, msg: string) => {
    const now = performance.now();
    if (now - last < everyMs) {
      suppressed++;
      return;
    }
    last = now;
    log[level](suppressed > 0 ? { ...fields, suppressed } : fields, msg);
    suppressed = 0;
  };
}

// One root per process; components take a child so every line says where it came from.
export function createLogger(level: LogLevel, name: string): Logger {
  return pino(
    {
      name,
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: 1, sync: true }),
  );
}
