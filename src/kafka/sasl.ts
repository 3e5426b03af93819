import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

// SASL for the one request the service sends through Kafka's protocol itself (topic-id.ts): PLAIN (RFC 4616) and
// SCRAM-SHA-256/512 (RFC 5802, 7677), as Kafka runs them inside SaslAuthenticate requests. librdkafka and kafkajs
// do their own; this is the same exchange, small enough to read whole.

export type Mechanism = "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512";

/** One SASL exchange: the client's first message, then its answer to each server message (null: done). */
export interface SaslExchange {
  first(): Buffer;
  next(server: Buffer): Buffer | null;
}

export function plain(username: string, password: string): SaslExchange {
  return { first: () => Buffer.from(`\0${username}\0${password}`), next: () => null };
}

const saslName = (s: string) => s.replace(/=/g, "=3D").replace(/,/g, "=2C");

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(",")) {
    const i = part.indexOf("=");
    if (i > 0) out.set(part.slice(0, i), part.slice(i + 1));
  }
  return out;
}

export function scram(
  mechanism: "SCRAM-SHA-256" | "SCRAM-SHA-512",
  username: string,
  password: string,
  nonce = randomBytes(18).toString("base64"),
): SaslExchange {
  const hash = mechanism === "SCRAM-SHA-256" ? "sha256" : "sha512";
  const hmac = (key: Buffer, text: string) => createHmac(hash, key).update(text).digest();
  const firstBare = `n=${saslName(username)},r=${nonce}`;
  let step = 0;
  let expectedServerSignature: Buffer | null = null;
  return {
    first: () => Buffer.from(`n,,${firstBare}`),
    next(server) {
      const text = server.toString("utf8");
      const a = attributes(text);
      if (a.has("e")) throw new Error(`SCRAM: the broker refused: ${a.get("e")}`);
      if (step++ === 0) {
        const serverNonce = a.get("r") ?? "";
        const salt = Buffer.from(a.get("s") ?? "", "base64");
        const iterations = Number(a.get("i"));
        if (!serverNonce.startsWith(nonce) || salt.length === 0 || !(iterations > 0))
          throw new Error("SCRAM: malformed server-first message");
        const salted = pbkdf2Sync(password, salt, iterations, hash === "sha256" ? 32 : 64, hash);
        const clientKey = hmac(salted, "Client Key");
        const storedKey = createHash(hash).update(clientKey).digest();
        const withoutProof = `c=biws,r=${serverNonce}`;
        const authMessage = `${firstBare},${text},${withoutProof}`;
        const signature = hmac(storedKey, authMessage);
        const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
        expectedServerSignature = hmac(hmac(salted, "Server Key"), authMessage);
        return Buffer.from(`${withoutProof},p=${proof.toString("base64")}`);
      }
      const v = Buffer.from(a.get("v") ?? "", "base64");
      if (!expectedServerSignature || v.length !== expectedServerSignature.length || !timingSafeEqual(v, expectedServerSignature)) {
        throw new Error("SCRAM: the broker's signature does not verify");
      }
      return null;
    },
  };
}

export function saslExchange(mechanism: Mechanism, username: string, password: string): SaslExchange {
  return mechanism === "PLAIN" ? plain(username, password) : scram(mechanism, username, password);
}
