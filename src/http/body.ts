import { AppError } from "../errors.ts";

// Bodies are read here, not by Bun's parser, so the size limit holds for chunked bodies too and every
// refusal is a JSON error: Bun's own 413 has an empty body and never reaches onError.

export async function readJsonBody(request: Request, limit: number, opts: { textPlain?: boolean } = {}): Promise<unknown> {
  const type = request.headers.get("content-type") ?? "";
  const mediaType = type.split(";")[0]!.trim().toLowerCase();
  const json = mediaType === "application/json" || /^application\/[a-z0-9.+-]+\+json$/.test(mediaType);
  if (!json && !(opts.textPlain && mediaType === "text/plain")) {
    throw new AppError(
      "unsupported_media_type",
      opts.textPlain ? "content-type must be application/json or text/plain (JSON text)" : "content-type must be application/json",
    );
  }
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
  // With a Content-Length at most the limit, HTTP framing bounds the body: read it whole (no stream reader,
  // which cost ~10 % of the API's CPU per view in a profile). Chunked bodies are read and counted chunk by chunk.
  const text = declared !== null ? await request.text() : await readLimited(request, limit);
  if (text.trim() === "") throw new AppError("invalid_json", "request body is empty; expected a JSON object");
  if (tooDeep(text, MAX_DEPTH)) {
    // Validating (and describing) a deeply nested value recurses per level: refuse it before it gets there.
    throw new AppError("invalid_request", `request body nests deeper than ${MAX_DEPTH} levels`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new AppError("invalid_json", "request body is not valid JSON");
  }
  // Every JSON route takes an object; saying so here beats a schema message about its first missing field.
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new AppError("invalid_request", "request body must be a JSON object");
  }
  return value;
}

const MAX_DEPTH = 32;

/** Bracket depth outside strings; the text is at most the body limit, so one pass is cheap. */
function tooDeep(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \\ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91 /* { [ */) {
      if (++depth > max) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}

function tooLarge(limit: number) {
  return new AppError("payload_too_large", `request body exceeds ${limit} bytes`);
}

async function readLimited(request: Request, limit: number): Promise<string> {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      void reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return new TextDecoder().decode(chunks[0]);
  return new TextDecoder().decode(Buffer.concat(chunks));
}
