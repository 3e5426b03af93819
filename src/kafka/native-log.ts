import { dlopen, FFIType, ptr } from "bun:ffi";
import { writeSync } from "node:fs";
import type { Logger } from "../log.ts";

// kafka-crab-js prints librdkafka's log lines (its own JSON: timestamp, level, fields.message, target) straight
// to fd 1 from native threads: several a second per client while a broker is away, in another schema than
// ours, with no hook to take them. So the process entry moves fd 1 onto a pipe read here (captureStdout):
// librdkafka's lines become records of one pino child (component "librdkafka"), at most `perWindow` per window
// and a count of the rest; anything else written to fd 1 (Bun's console) goes through unchanged, as do all
// lines while KAFKA_DEBUG asks for librdkafka's debug output. Our own logs go to the original stdout.

const LEVELS: Record<string, NativeLevel> = {
  ERROR: "error",
  WARN: "warn",
  INFO: "info",
  DEBUG: "debug",
  TRACE: "trace",
};

export interface NativeLogRouter {
  /** Feeds what was read from the pipe; lines may be split across chunks. */
  push(chunk: string, now: number): void;
  /** Closes the current window: logs how many lines it left out, if any. */
  tick(now: number): void;
}

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

export function createNativeLogRouter(
  log: Logger,
  passThrough: (line: string) => void,
  opts: { perWindow?: number; windowMs?: number; raw?: boolean } = {},
): NativeLogRouter {
  const limiter = createLogLimiter(log, { perWindow: opts.perWindow, windowMs: opts.windowMs });
  let carry = "";

  function route(line: string, now: number) {
    let parsed: { level?: string; fields?: { message?: unknown }; target?: string } | null = null;
    if (!opts.raw && line.startsWith('{"timestamp"')) {
      try {
        parsed = JSON.parse(line);
      } catch {}
    }
    const level = parsed?.level ? LEVELS[parsed.level] : undefined;
    if (!level || typeof parsed?.fields?.message !== "string") {
      passThrough(`${line}\n`);
      return;
    }
    limiter.log(level, { target: parsed.target }, parsed.fields.message, now);
  }

  return {
    push(chunk, now) {
      const lines = (carry + chunk).split("\n");
      carry = lines.pop() ?? "";
      for (const line of lines) if (line) route(line, now);
    },
    tick: limiter.tick,
  };
}

/**
 * Points fd 1 at a pipe and returns what was fd 1 before (for our own logs) and the pipe's reading end.
 * Null where libc cannot be loaded: then nothing moves. The pipe's writing end is non-blocking, so a native
 * thread never waits on a busy event loop: past the pipe's buffer its lines are dropped.
 */
export function captureStdout(): { stdoutFd: number; readFd: number } | null {
  let libc: ReturnType<typeof openLibc>;
  try {
    libc = openLibc();
  } catch {
    return null;
  }
  const fds = new Int32Array(2);
  const O_NONBLOCK = 0o4000;
  const O_CLOEXEC = 0o2000000;
  if (libc.symbols.pipe2(ptr(fds), O_NONBLOCK | O_CLOEXEC) !== 0) return null;
  const stdoutFd = libc.symbols.dup(1);
  if (stdoutFd < 0 || libc.symbols.dup2(fds[1]!, 1) < 0) return null;
  return { stdoutFd, readFd: fds[0]! };
}

function openLibc() {
  return dlopen("libc.so.6", {
    pipe2: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    dup: { args: [FFIType.i32], returns: FFIType.i32 },
    dup2: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  });
}

/** Reads the pipe for the life of the process and routes what native code writes to fd 1. */
export function routeNativeStdout(readFd: number, stdoutFd: number, log: Logger, raw: boolean): void {
  const router = createNativeLogRouter(log, (line) => writeSync(stdoutFd, line), { raw });
  const timer = setInterval(() => router.tick(performance.now()), 10_000);
  timer.unref();
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of Bun.file(readFd).stream()) router.push(decoder.decode(chunk, { stream: true }), performance.now());
  })().catch((err) => log.error({ err }, "stopped reading native log lines"));
}
