import pino, { type Logger } from "pino";
import type { LogLevel } from "./config.ts";

export type { Logger };

let destinationFd = 1;

/** Where every logger created after this writes: the original stdout once fd 1 carries native output (main.ts). */
export function setLogDestination(fd: number): void {
  destinationFd = fd;
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
    pino.destination({ fd: destinationFd, sync: true }),
  );
}
