import { describe, expect, test } from "bun:test";
import { Registry } from "../../src/metrics.ts";

describe("metrics registry", () => {
  test("a label set is one series whatever the key order; values are escaped in the text format", () => {
    const r = new Registry();
    const c = r.counter("things_total", "Things");
    c.inc({ b: "x", a: 1 });
    c.inc({ a: 1, b: "x" }, 2);
    c.inc({ a: 'say "hi"\\\n' });
    expect(c.get({ b: "x", a: 1 })).toBe(3);
    expect(r.render()).toContain('things_total{a="1",b="x"} 3\n');
    expect(r.render()).toContain('things_total{a="say \\"hi\\"\\\\\\n"} 1\n');
  });

  test("histograms render cumulative buckets per label set", () => {
    const r = new Registry();
    const h = r.histogram("wait_seconds", "Waits", [0.1, 1]);
    h.observe(0.05, { kind: "a" });
    h.observe(0.5, { kind: "a" });
    h.observe(5, { kind: "a" });
    const text = r.render();
    expect(text).toContain('wait_seconds_bucket{kind="a",le="0.1"} 1\n');
    expect(text).toContain('wait_seconds_bucket{kind="a",le="1"} 2\n');
    expect(text).toContain('wait_seconds_bucket{kind="a",le="+Inf"} 3\n');
    expect(text).toContain('wait_seconds_count{kind="a"} 3\n');
  });

  test("a bound observer adds to the same series as observe() with the same labels, and renders nothing before it observes", () => {
    const r = new Registry();
    const h = r.histogram("wait_seconds", "Waits", [0.1, 1]);
    const bound = h.bind({ route: "/v", status: 202, method: "POST" });
    const unused = h.bind({ route: "/v", status: 503, method: "POST" });
    expect(r.render()).not.toContain("wait_seconds_count");
    bound(0.05);
    h.observe(0.5, { method: "POST", route: "/v", status: 202 });
    bound(5);
    const text = r.render();
    expect(text).toContain('wait_seconds_bucket{method="POST",route="/v",status="202",le="1"} 2\n');
    expect(text).toContain('wait_seconds_count{method="POST",route="/v",status="202"} 3\n');
    expect(text).not.toContain('status="503"');
    expect(unused).toBeFunction();
  });
});
