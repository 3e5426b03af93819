import { Elysia } from "elysia";
import { swagger } from "@elysiajs/swagger";
import { dirname, join } from "node:path";

// The OpenAPI document comes from the route schemas (@elysiajs/swagger). The plugin's own page loads
// Swagger UI from a CDN, which a closed network cannot reach, so the page and its assets are served here
// from the swagger-ui-dist package: the UI works offline.

const ASSETS = dirname(require.resolve("swagger-ui-dist/package.json"));
const SERVED = new Set(["swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png"]);
const SPEC = "/swagger/json";

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
        specPath: SPEC,
        exclude: [/^\/swagger/],
        documentation: {
          info: {
            title: "product-views",
            version: "1.0.0",
            description:
              "Records product views through Kafka and serves the most viewed products. Errors are always {error, code}.",
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
