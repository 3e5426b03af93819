export async function metric(url: string, name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `) || (labels === "" && l.startsWith(`${name} `)));
  return line ? Number(line.split(" ").pop()) : 0;
}

/** The ingest token of testEnv(): what a shop's backend sends. */
export const INGEST_TOKEN = "integration-ingest-token-4f1c9a";

export const TRUSTED = { authorization: `Bearer ${INGEST_TOKEN}` };

/** A desktop browser's User-Agent (isbot lets it through; Bun's own "Bun/1.x" is a bot). */
export const BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

const isViewRoute = (url: string) => /\/view(s)?$/.test(url);

/** A JSON POST; to the view routes with the ingest token unless `headers` names an authorization (see postPublic). */
export function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const auth = isViewRoute(url) && !("authorization" in headers) ? TRUSTED : {};
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    // No answer in 15 s is a failure to report, not a reason for a test (or a load loop's stop) to hang.
    signal: AbortSignal.timeout(15_000),
  });
}

/** A view request as a browser sends it: no token, a browser's User-Agent (unless `headers` says otherwise). */
export function postPublic(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "user-agent": BROWSER_UA, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
}
