import { loadConfig } from "../../../src/config.ts";
import type { NewProduct, Product } from "../../../src/domain/product.ts";
import type { ViewEvent } from "../../../src/domain/view.ts";
import { createApp } from "../../../src/http/app.ts";
import type { FastHandler } from "../../../src/http/view-fast-path.ts";
import { createLogger } from "../../../src/log.ts";
import { Registry } from "../../../src/metrics.ts";
import { createCallerOf } from "../../../src/http/caller.ts";
import { createClientAddress } from "../../../src/http/client-address.ts";
import { createAdmission } from "../../../src/ingest/admission.ts";
import { createViewerHasher } from "../../../src/ingest/viewer.ts";

// The HTTP app in-process (app.handle) with a business side that keeps what it was handed: each test can prove
// what was (or was not) recorded or created. No Kafka, no Postgres: these tests are about the HTTP layer.

export const TEST_ID = "00000000-0000-4000-8000-000000000001";

/**
 * `public`: requests are who they say they are (http/caller.ts, with `peer` as every socket's address) and public
 * views pass the real rules (ingest/admission.ts); by default every caller is trusted, as with an ingest token.
 */
export function inProcessApp(opts: { env?: Record<string, string>; failViews?: Error; public?: boolean; peer?: string } = {}) {
  const recorded: ViewEvent[][] = [];
  const config = loadConfig(opts.env ?? {});
  const metrics = new Registry();
  const admit = createAdmission(config.trust, createViewerHasher(config.trust.viewerSecret).viewerOf, metrics);
  const callerOf = createCallerOf({
    ingestTokens: config.trust.ingestTokens,
    corsOrigins: config.http.corsOrigins,
    clientAddress: createClientAddress(config.trust.trustedProxies),
  });
  /** The Idempotency-Key each recorded request carried, as the route parsed it. */
  const keys: (string | undefined)[] = [];
  const created: NewProduct[] = [];
  const record = async (events: readonly ViewEvent[], key?: string) => {
    if (opts.failViews) throw opts.failViews;
    recorded.push([...events]);
    keys.push(key);
  };
  const app = createApp({
    http: config.http,
    log: createLogger("silent", "test"),
    metrics,
    views: {
      record,
      async recordPublic(caller, items, key) {
        const a = admit(caller, items);
        if (a.kind === "ignored") return { counted: 0, ignored: a.views, reason: a.reason };
        await record(a.events, key);
        return { counted: a.events.length, ignored: a.ignored };
      },
    },
    clientAddress: createClientAddress(config.trust.trustedProxies),
    callerOf: opts.public ? (request) => callerOf(request, opts.peer ?? "127.0.0.1") : () => ({ kind: "trusted" }),
    products: {
      create: async (p): Promise<Product> => {
        created.push(p);
        const now = new Date().toISOString();
        return {
          id: TEST_ID,
          name: p.name,
          description: p.description,
          view_count: p.viewCount,
          unique_viewers: 0,
          created_at: now,
          updated_at: now,
        };
      },
      get: async () => null,
      topJson: () => "[]",
      topStream: () => new Response(""),
      series: async () => null,
    },
    ready: async () => ({ postgres: true, kafka: true }),
  });
  const call = (path: string, init: RequestInit = {}) => app.handle(new Request(`http://api.test${path}`, init));
  /** The same request through what Bun's router serves ahead of Elysia (view-fast-path.ts), where it serves one. */
  const served = (path: string, init: RequestInit = {}) => {
    const routes = (app.config.serve?.routes ?? {}) as Record<string, Record<string, FastHandler>>;
    const handler = routes[path]?.[init.method ?? "GET"];
    const request = new Request(`http://api.test${path}`, init);
    return handler ? handler(request) : app.handle(request);
  };
  const post = (path: string, body: unknown) =>
    call(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { app, call, served, post, recorded, created, keys, metrics };
}
