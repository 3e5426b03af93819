import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { kafkajsSecurity, librdkafkaSecurity } from "../../src/kafka/security.ts";

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
  return [];
}

describe("config", () => {
  test("defaults need no environment and are frozen", () => {
    const c = loadConfig({});
    expect(c.http.port).toBe(8080);
    expect(c.kafka.topic).toBe("product-views");
    expect(c.kafka.partitions).toBe(6);
    expect(c.producer.lingerMs).toBe(15);
    expect(c.producer.ackMode).toBe("durable");
    expect(c.worker.flushIntervalMs).toBe(150);
    expect(c.kafka.debug).toBe("");
    expect(loadConfig({ KAFKA_DEBUG: "cgrp,fetch" }).kafka.debug).toBe("cgrp,fetch");
    expect(Object.isFrozen(c.http)).toBe(true);
  });

  const bad: Array<[string, string]> = [
    ["PORT", "eighty"],
    ["PORT", "70000"],
    ["HOST", ""],
    ["DATABASE_URL", "mysql://x@y/z"],
    ["DATABASE_URL", "not a url"],
    ["KAFKA_BROKERS", "localhost"],
    ["KAFKA_BROKERS", "a:1,,b"],
    ["KAFKA_TOPIC", "bad topic!"],
    ["KAFKA_PARTITIONS", "0"],
    ["KAFKA_CLIENT_ID", "a b"],
    ["KAFKA_DEBUG", "cgrp,fetchez"],
    ["KAFKA_DEBUG", "cgrp,"],
    ["KAFKA_GROUP_ID", "g/h"],
    ["KAFKA_LINGER_MS", "-1"],
    ["KAFKA_BATCH_MAX_MESSAGES", "0"],
    ["KAFKA_COMPRESSION", "brotli"],
    ["KAFKA_PRODUCER_LANES", "0"],
    ["KAFKA_PARTITIONER", "murmur2"],
    ["INGEST_ACK", "maybe"],
    ["INGEST_MAX_IN_FLIGHT", "1.5"],
    ["INGEST_TIMEOUT_MS", "10"],
    ["BODY_LIMIT_BYTES", "1"],
    ["BATCH_BODY_LIMIT_BYTES", "1024"],
    ["ADMIN_TOKEN", "short"],
    ["ADMIN_OPEN", "yes"],
    ["INGEST_TOKEN", "short"],
    ["INGEST_TOKEN", "a-long-enough-token-1,has space in it here"],
    ["TRUSTED_PROXIES", "10.0.0.0/33"],
    ["TRUSTED_PROXIES", "proxy.internal"],
    ["VIEWER_SECRET", "too-short"],
    ["VIEW_REPEAT_WINDOW_S", "-1"],
    ["BOT_FILTER", "maybe"],
    ["PUBLIC_MAX_BATCH_ITEMS", "0"],
    ["RATE_VIEWER_BURST", "50"],
    ["API_WORKERS", "0"],
    ["TOP_REFRESH_MS", "1"],
    ["HTTP_IDLE_TIMEOUT_S", "0"],
    ["CORS_ORIGINS", "shop.example"],
    ["CORS_ORIGINS", "https://shop.example/path"],
    ["FLUSH_INTERVAL_MS", "0"],
    ["FLUSH_MAX_PRODUCTS", "x"],
    ["FLUSH_MAX_ROWS_PER_S", "-1"],
    ["FLUSH_MAX_INTERVAL_MS", "1"],
    ["FLUSH_TIMEOUT_MS", "10"],
    ["MAX_PENDING_PRODUCTS", "5"],
    ["FETCH_BATCH_SIZE", "0"],
    ["WORKER_METRICS_PORT", "-5"],
    ["DB_POOL_SIZE", "1000"],
    ["LOG_LEVEL", "loud"],
  ];
  for (const [key, value] of bad) {
    test(`rejects ${key}=${JSON.stringify(value)} naming the variable`, () => {
      const p = problems({ [key]: value });
      // HOST="" means unset (default); every other case must be reported.
      if (key === "HOST") expect(p).toEqual([]);
      else expect(p.some((line) => line.includes(key))).toBe(true);
    });
  }

  test("reports every bad key at once", () => {
    const p = problems({ PORT: "x", KAFKA_LINGER_MS: "y", LOG_LEVEL: "z" });
    expect(p).toHaveLength(3);
  });

  test("TLS and SASL: every bad setting reported at once, and good ones become each client's words", () => {
    expect(
      problems({
        KAFKA_SECURITY_PROTOCOL: "sasl_ssl",
        KAFKA_SSL_CA_LOCATION: "/nowhere/ca.pem",
        KAFKA_SSL_CERTIFICATE_LOCATION: "package.json",
        KAFKA_SASL_MECHANISM: "GSSAPI",
        DATABASE_SSL_CA: "/nowhere/pg-ca.pem",
      }),
    ).toEqual([
      'DATABASE_SSL_CA="/nowhere/pg-ca.pem" is not a readable file',
      'KAFKA_SSL_CA_LOCATION="/nowhere/ca.pem" is not a readable file',
      "KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together",
      'KAFKA_SASL_MECHANISM="GSSAPI" must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512',
      "KAFKA_SECURITY_PROTOCOL=sasl_ssl needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
    ]);
    expect(problems({ KAFKA_SASL_USERNAME: "u", KAFKA_SSL_CA_LOCATION: "package.json" })).toEqual([
      "KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL=plaintext uses no TLS (ssl or sasl_ssl)",
      "KAFKA_SASL_USERNAME/PASSWORD are set but KAFKA_SECURITY_PROTOCOL=plaintext uses no SASL (sasl_plaintext or sasl_ssl)",
    ]);
    const c = loadConfig({
      KAFKA_SECURITY_PROTOCOL: "sasl_ssl",
      KAFKA_SSL_CA_LOCATION: "package.json",
      KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
      KAFKA_SASL_USERNAME: "u",
      KAFKA_SASL_PASSWORD: "p",
    });
    expect(librdkafkaSecurity(c.kafka.security)).toEqual({
      "security.protocol": "sasl_ssl",
      "ssl.ca.location": "package.json",
      "sasl.mechanisms": "SCRAM-SHA-512",
      "sasl.username": "u",
      "sasl.password": "p",
    });
    const js = kafkajsSecurity(c.kafka.security);
    expect(js.sasl).toEqual({ mechanism: "scram-sha-512", username: "u", password: "p" });
    expect(typeof js.ssl?.ca).toBe("string");
    expect(librdkafkaSecurity(loadConfig({}).kafka.security)).toEqual({});
  });
});
