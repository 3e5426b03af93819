import { describe, expect, test } from "bun:test";
import { plain, scram } from "../../../src/kafka/sasl.ts";

describe("SASL for the topic-id request", () => {
  test("SCRAM-SHA-256 gives RFC 7677's example exchange, and checks the server's signature", () => {
    const s = scram("SCRAM-SHA-256", "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
    expect(s.first().toString()).toBe("n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    const serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    expect(s.next(Buffer.from(serverFirst))!.toString()).toBe(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    );
    expect(s.next(Buffer.from("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))).toBeNull();
  });

  test("a server signature that does not verify, a foreign nonce or an error ends the exchange", () => {
    const serverFirst = Buffer.from("r=abcXYZ,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    const forged = scram("SCRAM-SHA-512", "user", "pencil", "abc");
    forged.next(serverFirst);
    expect(() => forged.next(Buffer.from("v=AAAA"))).toThrow("does not verify");
    expect(() => scram("SCRAM-SHA-512", "user", "pencil", "other").next(serverFirst)).toThrow("malformed");
    expect(() => scram("SCRAM-SHA-256", "u", "p", "abc").next(Buffer.from("e=invalid-proof"))).toThrow("invalid-proof");
  });

  test("PLAIN sends one message, names escaped for SCRAM", () => {
    expect(plain("u", "p").first().toString()).toBe("\0u\0p");
    expect(scram("SCRAM-SHA-256", "a=b,c", "p", "n").first().toString()).toBe("n,,n=a=3Db=2Cc,r=n");
  });
});
