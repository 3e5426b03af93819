import { Elysia } from "elysia";
import { swagger } from "@elysiajs/swagger";
import { dirname, join } from "node:path";

// The OpenAPI document comes from the route schemas (@elysiajs/swagger). The plugin's own page loads
// Swagger UI from a CDN, which a closed network cannot reach, so the page and its assets are served here
// from the swagger-ui-dist package: the UI works offline.
// Why not Elysia's newer @elysiajs/openapi: its Swagger UI and Scalar pages load their scripts from a CDN too,
// with no option to serve them locally (elysiajs/elysia-openapi issue 304), so moving would not delete this
// page; the document it generates is what @elysiajs/swagger generates here.

const ASSETS = dirname(require.resolve("swagger-ui-dist/package.json"));
const SERVED = new Set(["swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png"]);
const SPEC = "/swagger/json";
/** What the plugin generates; /swagger/json serves it cleaned up by openApiDocument(). */
export const RAW_SPEC = "/swagger/raw.json";

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <title>product-views API</title>
  <link rel="icon" type="image/png" href="/swagger/assets/favicon-32x32.png" />
  <link rel="stylesheet" href="/swagger/assets/swagger-ui.css" />
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/swagger/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: "${SPEC}", dom_id: "#swagger-ui", deepLinking: true });
  </script>
</body>
</html>`;

type Json = unknown;

function walk(node: Json, fix: (o: Record<string, Json>) => void): Json {
  if (Array.isArray(node)) for (const n of node) walk(n, fix);
  else if (node && typeof node === "object") {
    fix(node as Record<string, Json>);
    for (const v of Object.values(node)) walk(v, fix);
  }
  return node;
}

/**
 * The plugin's document, made exact for this API: every body is JSON (the plugin also lists multipart and
 * text/plain; only the view routes take text/plain, as JSON text for beacons), JSON Schema `const` becomes OpenAPI 3.0 `enum`, every
 * response has a description, and the bearer requirement is only declared when ADMIN_TOKEN is set.
 */
export function openApiDocument(raw: Record<string, Json>, adminTokenSet: boolean): Record<string, Json> {
  const spec = structuredClone(raw) as { paths: Record<string, Record<string, Record<string, Json>>> } & Record<string, Json>;
  for (const [path, ops] of Object.entries(spec.paths)) {
    // The view routes also read text/plain bodies holding the same JSON (beacons, preflight-free fetches).
    const beacon = path.endsWith("/products/view") || path.endsWith("/products/views");
    for (const op of Object.values(ops)) {
      const body = op.requestBody as { content?: Record<string, Json>; required?: boolean } | undefined;
      if (body?.content?.["application/json"]) {
        const json = body.content["application/json"];
        body.content = beacon ? { "application/json": json, "text/plain": json } : { "application/json": json };
        body.required = true;
      }
      for (const [status, res] of Object.entries((op.responses ?? {}) as Record<string, Record<string, Json>>)) {
        const content = res.content as Record<string, Json> | undefined;
        if (content?.["application/json"]) res.content = { "application/json": content["application/json"] };
        if (path.endsWith("/top/stream") && status === "200") res.content = { "text/event-stream": topStreamMedia(spec) };
        res.description ??= Number(status) < 400 ? "Success" : "Error";
        // The plugin leaves an array schema's keywords on the response object itself; only these belong there.
        for (const key of Object.keys(res)) if (!["description", "content", "headers", "links"].includes(key)) delete res[key];
      }
      if (!adminTokenSet) delete op.security;
    }
  }
  walk(spec, (o) => {
    if ("const" in o) {
      o.enum = [o.const];
      delete o.const;
    }
  });
  return spec;
}

export function docs() {
  const page = () => new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
  const hidden = { detail: { hide: true } };
  return new Elysia({ name: "docs" })
    .get("/swagger", page, hidden)
    .get("/swagger/index.html", page, hidden)
    .get(
      "/swagger/assets/:file",
      ({ params, set }) => {
        if (!SERVED.has(params.file)) {
          set.status = 404;
          return { error: `no asset ${params.file}`, code: "not_found" };
        }
        return new Response(Bun.file(join(ASSETS, params.file)), {
          headers: { "cache-control": "public, max-age=86400" },
        });
      },
      hidden,
    )
    .use(
      swagger({
        // The plugin's CDN page is parked on a path nobody links to; /swagger above is the offline one.
        path: "/swagger/cdn" as "/swagger",
        specPath: RAW_SPEC,
        exclude: [/^\/swagger/],
        documentation: {
          info: {
            title: "product-views",
            version: "1.0.0",
            description: "Records product views through Kafka and serves the most viewed products. Errors are always {error, code}.",
          },
          tags: [
            { name: "views", description: "Recording views" },
            { name: "products", description: "Reading and creating products" },
            { name: "ops", description: "Health, readiness, metrics" },
          ],
          components: {
            securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
          },
        },
      }),
    );
}

/**
 * The live stream's events, as OpenAPI 3.2 describes Server-Sent Events (an `itemSchema` per event, which
 * schemathesis validates): a `retry` line first, then `top` events whose data is the JSON array GET /top answers.
 * The 3.0 `schema` stays a string for tools that predate it.
 */
function topStreamMedia(spec: Record<string, Json>): Record<string, Json> {
  const topList = (
    (spec.paths as Record<string, Record<string, Record<string, Json>>>)["/api/v1/products/top"]?.get?.responses as
      | Record<string, { content?: Record<string, { schema?: Json }> }>
      | undefined
  )?.["200"]?.content?.["application/json"]?.schema ?? { type: "array" };
  return {
    schema: {
      type: "string",
      description: "Server-Sent Events: `retry: 2000`, then `event: top` with `data:` the JSON array of GET /top; `: keep-alive` comments",
    },
    itemSchema: {
      type: "object",
      properties: {
        event: { type: "string", enum: ["top"] },
        data: { type: "string", contentMediaType: "application/json", contentSchema: topList },
        retry: { type: "integer", minimum: 0 },
      },
      description: "One event: `top` with the list (the same JSON as GET /top), or the reconnection delay alone",
    },
  };
}
