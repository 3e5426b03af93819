import { AppError } from "../errors.ts";

// What an Idempotency-Key (IETF httpapi draft) may be. What the service does with one: ingest/idempotency.ts.

export const MAX_KEY_LENGTH = 255;

const invalid = (message: string) => new AppError("idempotency_key_invalid", message);

/** An sf-string's content: `\"` and `\\` are its only escapes, and a bare `"` ends it early. */
function unquote(quoted: string): string {
  let out = "";
  for (let i = 1; i < quoted.length - 1; i++) {
    const c = quoted[i]!;
    if (c === "\\") {
      const next = quoted[i + 1];
      if (i + 1 >= quoted.length - 1 || (next !== '"' && next !== "\\")) {
        throw invalid('Idempotency-Key is a quoted string with a bad escape (only \\" and \\\\ are allowed)');
      }
      out += next;
      i++;
    } else if (c === '"') {
      throw invalid("Idempotency-Key is a quoted string with an unescaped quote inside");
    } else out += c;
  }
  return out;
}

/**
 * The key of an `Idempotency-Key` header value (undefined: no header). The draft makes it an RFC 8941
 * sf-string, quoted; many clients send it bare, so both are taken. Either way 1..255 printable ASCII characters.
 */
export function parseIdempotencyKey(raw: string | null): string | undefined {
  if (raw === null) return undefined;
  const key = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? unquote(raw) : raw;
  if (key.length === 0) throw invalid("Idempotency-Key must not be empty");
  if (key.length > MAX_KEY_LENGTH) throw invalid(`Idempotency-Key must be at most ${MAX_KEY_LENGTH} characters`);
  if (!/^[\x20-\x7e]+$/.test(key)) throw invalid("Idempotency-Key must be printable ASCII (space to ~)");
  return key;
}
