import { Type } from "@sinclair/typebox";
import { Elysia } from "elysia";
import type { Registry } from "../metrics.ts";
import { LIVE_PAGE } from "./live-page.ts";

// Operator routes: liveness, readiness, Prometheus metrics, and the live top-10 page at /.

const Readiness = Type.Object({
  status: Type.Union([Type.Literal("ready"), Type.Literal("not_ready")]),
  checks: Type.Object({ postgres: Type.Boolean(), kafka: Type.Boolean() }),
});

export function opsRoutes(deps: { metrics: Registry; ready(): Promise<{ postgres: boolean; kafka: boolean }> }) {
  const { metrics } = deps;
  return new Elysia({ name: "ops" })
    .get("/health", () => ({ status: "ok" as const }), {
      detail: { summary: "Liveness: the process answers", tags: ["ops"] },
      response: { 200: Type.Object({ status: Type.Literal("ok") }) },
    })
    .get(
      "/ready",
      async ({ set }) => {
        const checks = await deps.ready();
        const ok = Object.values(checks).every(Boolean);
        if (!ok) set.status = 503;
        return { status: ok ? "ready" : "not_ready", checks };
      },
      {
        detail: { summary: "Readiness: Postgres and Kafka reachable", tags: ["ops"] },
        response: {
          200: Readiness,
          503: Readiness,
        },
      },
    )
    .get("/metrics", () => new Response(metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4" } }), {
      detail: { summary: "Prometheus metrics", tags: ["ops"] },
    })
    .get("/", () => new Response(LIVE_PAGE, { headers: { "content-type": "text/html; charset=utf-8" } }), {
      detail: { hide: true },
    });
}
