import { accessSync, constants } from "node:fs";
import type { ConfigReader } from "./config.ts";

// How the service reaches a Kafka or a Postgres that asks for TLS or SASL: read from the environment with the rest of
// the configuration (config.ts), every problem reported with the others. Files are named by path and checked readable
// here; the clients read them when they connect (kafka/security.ts, db/client.ts).

export const KAFKA_PROTOCOLS = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"] as const;
export const SASL_MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] as const;

export interface KafkaSecurity {
  readonly protocol: (typeof KAFKA_PROTOCOLS)[number];
  /** PEM file of the CAs that sign the brokers' certificates (default: the system's). */
  readonly caFile?: string;
  /** PEM files of a client certificate and its key, for brokers that ask for one (ssl.client.auth). */
  readonly certificateFile?: string;
  readonly keyFile?: string;
  readonly keyPassword?: string;
  readonly sasl?: { readonly mechanism: (typeof SASL_MECHANISMS)[number]; readonly username: string; readonly password: string };
}

export interface DbTls {
  /** PEM file of the CAs that sign the server's certificate: the connection is TLS and verified (host included). */
  readonly caFile: string;
}

function readable(r: ConfigReader, key: string): string | undefined {
  const path = r.raw(key);
  if (path === undefined) return undefined;
  try {
    accessSync(path, constants.R_OK);
  } catch {
    r.problem(`${key}=${JSON.stringify(path)} is not a readable file`);
  }
  return path;
}

export function readKafkaSecurity(r: ConfigReader): KafkaSecurity {
  const protocol = r.oneOf("KAFKA_SECURITY_PROTOCOL", "plaintext", KAFKA_PROTOCOLS);
  const tls = protocol === "ssl" || protocol === "sasl_ssl";
  const sasl = protocol.startsWith("sasl_");
  const caFile = readable(r, "KAFKA_SSL_CA_LOCATION");
  const certificateFile = readable(r, "KAFKA_SSL_CERTIFICATE_LOCATION");
  const keyFile = readable(r, "KAFKA_SSL_KEY_LOCATION");
  const keyPassword = r.raw("KAFKA_SSL_KEY_PASSWORD");
  if ((certificateFile === undefined) !== (keyFile === undefined)) {
    r.problem("KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together");
  }
  if (!tls && (caFile || certificateFile || keyFile)) {
    r.problem(`KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL=${protocol} uses no TLS (ssl or sasl_ssl)`);
  }
  const mechanism = r.oneOf("KAFKA_SASL_MECHANISM", "PLAIN", SASL_MECHANISMS);
  const username = r.raw("KAFKA_SASL_USERNAME");
  const password = r.raw("KAFKA_SASL_PASSWORD");
  if (sasl && (username === undefined || password === undefined)) {
    r.problem(`KAFKA_SECURITY_PROTOCOL=${protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD`);
  }
  if (!sasl && (username !== undefined || password !== undefined)) {
    r.problem(`KAFKA_SASL_USERNAME/PASSWORD are set but KAFKA_SECURITY_PROTOCOL=${protocol} uses no SASL (sasl_plaintext or sasl_ssl)`);
  }
  return {
    protocol,
    ...(caFile ? { caFile } : {}),
    ...(certificateFile ? { certificateFile } : {}),
    ...(keyFile ? { keyFile } : {}),
    ...(keyPassword ? { keyPassword } : {}),
    ...(sasl && username && password ? { sasl: { mechanism, username, password } } : {}),
  };
}

export function readDbTls(r: ConfigReader, url: string): DbTls | undefined {
  const caFile = readable(r, "DATABASE_SSL_CA");
  if (caFile === undefined) return undefined;
  if (/[?&]sslmode=disable\b/.test(url)) r.problem("DATABASE_SSL_CA is set but DATABASE_URL says sslmode=disable");
  return { caFile };
}
