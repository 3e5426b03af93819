import { describe, expect, test } from "bun:test";
import { MAX_KEY_LENGTH, parseIdempotencyKey } from "../../../src/domain/idempotency-key.ts";

const codeOf = (raw: string) => {
  try {
    parseIdempotencyKey(raw);
    return null;
  } catch (e) {
    return (e as { code: string }).code;
  }
};

describe("Idempotency-Key header", () => {
  test("absent means no key", () => {
    expect(parseIdempotencyKey(null)).toBeUndefined();
  });

  test("the draft's quoted sf-string and a bare key name the same key", () => {
    expect(parseIdempotencyKey('"8e03978e-40d5-43e8-bc93-6894a57f9324"')).toBe("8e03978e-40d5-43e8-bc93-6894a57f9324");
    expect(parseIdempotencyKey("8e03978e-40d5-43e8-bc93-6894a57f9324")).toBe("8e03978e-40d5-43e8-bc93-6894a57f9324");
    expect(parseIdempotencyKey('"a \\"b\\" \\\\c"')).toBe('a "b" \\c');
  });

  test("empty, too long, non-printable or badly quoted keys are refused as invalid", () => {
    for (const raw of ["", '""', "x".repeat(MAX_KEY_LENGTH + 1), "caf\u00e9", "a\tb", '"a\\b"', '"a"b"', '"a\\"']) {
      expect([raw, codeOf(raw)]).toEqual([raw, "idempotency_key_invalid"]);
    }
    expect(parseIdempotencyKey("x".repeat(MAX_KEY_LENGTH))).toHaveLength(MAX_KEY_LENGTH);
    expect(parseIdempotencyKey(" ~")).toBe(" ~");
  });
});
