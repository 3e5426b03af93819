import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { testEnv, useStack } from "./harness/stack.ts";

// The Grafana dashboard in ops/ must only query metrics the services really expose: a renamed metric would
// otherwise leave an empty panel that nobody notices until an incident.
const DASHBOARD = join(import.meta.dir, "../../ops/grafana/dashboards/product-views.json");

const PROMQL_WORDS = new Set([
  "sum",
  "avg",
  "min",
  "max",
  "count",
  "rate",
  "irate",
  "increase",
  "histogram_quantile",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "and",
  "or",
  "unless",
  "offset",
  "topk",
  "bottomk",
  "delta",
  "deriv",
]);

/** Metric names a PromQL expression reads (label matchers, grouping labels and ranges removed). */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, "")
    .replace(/"[^"]*"/g, "");
  const names = bare.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  // A histogram is queried through its series; it is declared under its own name.
  return [...new Set(names.filter((n) => !PROMQL_WORDS.has(n)).map((n) => n.replace(/_(bucket|sum|count)$/, "")))];
}

describe("ops dashboard", () => {
  const stack = useStack(testEnv());

  test("the expression parser finds metric names, not functions or labels", () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{route="/x"}[1m])))')).toEqual([
      "http_request_duration_seconds",
    ]);
    expect(metricNames("rate(a_sum[1m]) / rate(a_count[1m])")).toEqual(["a"]);
  });

  test("every metric the Grafana dashboard queries is declared in the API's or the worker's /metrics", async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: { title: string; targets: { expr: string }[] }[] };
    const exposed = new Set<string>();
    for (const url of [`http://127.0.0.1:${stack.api.port}/metrics`, `http://127.0.0.1:${stack.worker.port}/metrics`]) {
      const text = await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text();
      for (const line of text.split("\n")) if (line.startsWith("# TYPE ")) exposed.add(line.split(" ")[2]!);
    }
    const queried = new Map<string, string>();
    for (const p of dashboard.panels) for (const t of p.targets) for (const n of metricNames(t.expr)) queried.set(n, p.title);
    expect(queried.size).toBeGreaterThan(10);
    const missing = [...queried].filter(([n]) => !exposed.has(n)).map(([n, panel]) => `${n} (panel "${panel}")`);
    expect(missing).toEqual([]);
  });

  test("both processes say which librdkafka they run: the one scripts/librdkafka.sh pins", async () => {
    const pinned = /^VERSION=(\S+)/m.exec(readFileSync("scripts/librdkafka.sh", "utf8"))![1];
    for (const url of [`http://127.0.0.1:${stack.api.port}/metrics`, `http://127.0.0.1:${stack.worker.port}/metrics`]) {
      const text = await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text();
      expect(text).toContain(`kafka_client_info{librdkafka="${pinned}"} 1`);
    }
  });
});
