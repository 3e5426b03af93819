// The ceiling of this machine and this load generator: a bare Bun.serve that answers 202 without work.
// bench/run.sh measures it in the same run as the real API, so ratios compare like with like.
const port = Number(process.env.PORT ?? 8090);
const body = JSON.stringify({ status: "accepted", message: "View recorded successfully" });
// A GET answers a fixed list as long as GET /top?limit=10's (ten seeded products), built once: the bare cost of a read.
const at = new Date(0).toISOString();
const list = JSON.stringify(
  Array.from({ length: 10 }, (_, i) => ({
    id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
    name: `bench-${i + 1}`,
    description: "seeded for the bench",
    view_count: 1_000_000 - i,
    created_at: at,
    updated_at: at,
  })),
);
const json = { "content-type": "application/json" };
const server = Bun.serve({
  port,
  hostname: "127.0.0.1",
  reusePort: true,
  async fetch(req) {
    if (req.method === "GET") return new Response(list, { status: 200, headers: json });
    if (req.method === "POST") await req.arrayBuffer();
    return new Response(body, { status: 202, headers: json });
  },
});
console.log(`baseline listening on ${server.port}`);
