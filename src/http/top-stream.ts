import { AppError } from "../errors.ts";

// GET /top/stream: Server-Sent Events with the top `limit` as JSON, sent at once and then each time the
// in-memory ranking changes (a flush's NOTIFY refreshed it), never per request or per view. A comment line
// every heartbeatMs keeps the connection busy, under the server's idle timeout and any proxy's.

export interface TopSource {
  /** The top `limit` as JSON text; throws database_unavailable when it is too old to serve. */
  topJson(limit: number): string;
  onChange(listener: () => void): () => void;
}

export interface TopStreamOptions {
  heartbeatMs: number;
  /** Open streams at most (each holds a connection): past it, 503. */
  maxClients: number;
  /** Open streams one client address may hold (default: a tenth of maxClients, at least 1). */
  maxPerAddress?: number;
  /** The open streams, shared by streams of several rankings so that maxClients bounds them together. */
  clients?: Set<() => void>;
  /** Streams per address, shared likewise. */
  perAddress?: Map<string, number>;
}

const encoder = new TextEncoder();

export function createTopStream(source: TopSource, opts: TopStreamOptions) {
  // The close function of each open stream: their number is the client count.
  const open = opts.clients ?? new Set<() => void>();
  const slots = addressSlots(
    opts.perAddress ?? new Map<string, number>(),
    opts.maxPerAddress ?? Math.max(1, Math.floor(opts.maxClients / 10)),
  );
  return {
    clients: () => open.size,
    /** Ends every stream (shutdown: a stream never finishes on its own, so the server could not drain). */
    closeAll() {
      for (const close of [...open]) close();
    },
    /** The stream's response; it ends when `signal` aborts (the client went away) or the reader cancels. */
    open(limit: number, signal: AbortSignal, address = ""): Response {
      if (open.size >= opts.maxClients) {
        throw new AppError("too_many_streams", "too many live streams are open; retry later", { retryable: true });
      }
      slots.take(address);
      const body = streamBody(source, limit, opts.heartbeatMs, signal, {
        opened: (close) => open.add(close),
        closed(close) {
          open.delete(close);
          slots.give(address);
        },
      });
      return new Response(body, {
        headers: { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" },
      });
    },
  };
}

/** Streams per client address, bounded; an unknown address ("": a request served in-process) by maxClients alone. */
function addressSlots(perAddress: Map<string, number>, maxPerAddress: number) {
  return {
    take(address: string) {
      const held = perAddress.get(address) ?? 0;
      if (address !== "" && held >= maxPerAddress) {
        throw new AppError("too_many_streams", "too many live streams are open from this address; retry later", { retryable: true });
      }
      perAddress.set(address, held + 1);
    },
    give(address: string) {
      const n = (perAddress.get(address) ?? 1) - 1;
      if (n > 0) perAddress.set(address, n);
      else perAddress.delete(address);
    },
  };
}

/** One stream's events: the list at once and at each change, a heartbeat, and one close however it ends. */
function streamBody(
  source: TopSource,
  limit: number,
  heartbeatMs: number,
  signal: AbortSignal,
  life: { opened(close: () => void): void; closed(close: () => void): void },
) {
  let last = "";
  let close = () => {};
  let stale = false;
  let pushLatest = () => {};
  return new ReadableStream<Uint8Array>({
    start(controller) {
      // Only while the client reads: a stream whose reader is behind (desiredSize <= 0) holds no more than what
      // is queued, and gets the latest list when it reads again (pull), not every list in between.
      const send = (text: string) => {
        if ((controller.desiredSize ?? 0) <= 0) return false;
        try {
          controller.enqueue(encoder.encode(text));
          return true;
        } catch {
          close();
          return false;
        }
      };
      const push = () => {
        let json: string;
        try {
          json = source.topJson(limit);
        } catch {
          return; // too old to serve: the next refresh that succeeds sends it
        }
        if (json === last) return; // a change below this stream's limit
        stale = !send(`event: top\ndata: ${json}\n\n`);
        if (!stale) last = json;
      };
      pushLatest = () => {
        if (stale) push();
      };
      const unsubscribe = source.onChange(push);
      const beat = setInterval(() => send(": keep-alive\n\n"), heartbeatMs);
      let closed = false;
      close = () => {
        if (closed) return;
        closed = true;
        life.closed(close);
        unsubscribe();
        clearInterval(beat);
        signal.removeEventListener("abort", close);
        try {
          controller.close();
        } catch {}
      };
      signal.addEventListener("abort", close);
      life.opened(close);
      // Tells EventSource to reconnect after 2 s if the connection drops.
      send("retry: 2000\n\n");
      push();
    },
    pull() {
      pushLatest();
    },
    cancel() {
      close();
    },
  });
}
