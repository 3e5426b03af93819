// The ceiling of this machine and this load generator: a bare Bun.serve that answers 202 without work.
// bench/run.sh measures it in the same run as the real API, so ratios compare like with like.
const port = Number(process.env.PORT ?? 8090);
const body = JSON.stringify({ status: "accepted", message: "View recorded successfully" });
const server = Bun.serve({
  port,
  hostname: "127.0.0.1",
  reusePort: true,
  async fetch(req) {
    if (req.method === "POST") await req.arrayBuffer();
    return new Response(body, { status: 202, headers: { "content-type": "application/json" } });
  },
});
console.log(`baseline listening on ${server.port}`);
