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
  /** The open streams, shared by streams of several rankings so that maxClients bounds them together. */
  clients?: Set<() => void>;
}

const encoder = new TextEncoder();

export function createTopStream(source: TopSource, opts: TopStreamOptions) {
  // The close function of each open stream: their number is the client count.
  const open = opts.clients ?? new Set<() => void>();
  return {
    clients: () => open.size,
    /** Ends every stream (shutdown: a stream never finishes on its own, so the server could not drain). */
    closeAll() {
      for (const close of [...open]) close();
    },
    /** The stream's response; it ends when `signal` aborts (the client went away) or the reader cancels. */
    open(limit: number, signal: AbortSignal): Response {
      if (open.size >= opts.maxClients) {
        throw new AppError("too_many_streams", "too many live streams are open; retry later", { retryable: true });
      }
      let last = "";
      let close = () => {};
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          const send = (text: string) => {
            try {
              controller.enqueue(encoder.encode(text));
            } catch {
              close();
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
            last = json;
            send(`event: top\ndata: ${json}\n\n`);
          };
          const unsubscribe = source.onChange(push);
          const beat = setInterval(() => send(": keep-alive\n\n"), opts.heartbeatMs);
          let closed = false;
          close = () => {
            if (closed) return;
            closed = true;
            open.delete(close);
            unsubscribe();
            clearInterval(beat);
            signal.removeEventListener("abort", close);
            try {
              controller.close();
            } catch {}
          };
          signal.addEventListener("abort", close);
          open.add(close);
          // Tells EventSource to reconnect after 2 s if the connection drops.
          send("retry: 2000\n\n");
          push();
        },
        cancel() {
          close();
        },
      });
      return new Response(body, {
        headers: { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" },
      });
    },
  };
}
