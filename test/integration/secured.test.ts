import { afterAll, describe, expect, test } from "bun:test";
import { start as startApi } from "../../src/entry/api.ts";
import { start as startWorker } from "../../src/entry/worker.ts";
import { loadConfig } from "../../src/config.ts";
import { connect } from "../../src/db/client.ts";
import { fetchTopicIdentity } from "../../src/kafka/topic-id.ts";
import { seedProducts, viewCounts } from "./harness/db.ts";
import { post } from "./harness/http.ts";
import { prepare, testEnv } from "./harness/stack.ts";
import { bounded, waitFor } from "./harness/wait.ts";

// The service against a Kafka that asks for TLS or SASL and a Postgres over TLS: the suite's own broker listens with
// SSL (a client certificate required) and SASL_SSL (PLAIN, SCRAM-SHA-256/512) beside its plain listener, with a CA
// scripts/stack.sh made for the run, and its Postgres takes TLS (PV_TEST_TLS). Each run below is the real producer
// and consumer (librdkafka), admin and dead-letter client (kafkajs) and topic-id request, through one configuration:
// a view sent to the API is counted.

const dir = process.env.PV_TEST_TLS_DIR;
const tls = dir
  ? {
      ca: `${dir}/ca.pem`,
      cert: `${dir}/client.pem`,
      key: `${dir}/client-key.pem`,
      ssl: process.env.PV_TEST_KAFKA_SSL!,
      saslSsl: process.env.PV_TEST_KAFKA_SASL_SSL!,
      user: process.env.PV_TEST_SASL_USER!,
      password: process.env.PV_TEST_SASL_PASSWORD!,
    }
  : null;

/** API and worker in-process on `env`, one view sent and counted. */
async function countsOneView(env: Record<string, string>) {
  const ctx = await prepare(testEnv(env));
  const api = await startApi(ctx.config);
  const worker = await startWorker(ctx.config);
  try {
    const [id] = await seedProducts(ctx.db, 1, "secured");
    const res = await post(`http://127.0.0.1:${api.port}/api/v1/products/view`, { product_id: id });
    expect(res.status).toBe(202);
    await waitFor("the view counted", async () => (await viewCounts(ctx.db, [id!])).get(id!) === 1 || undefined, 30_000);
    const ssl = await ctx.db.sql<{ ssl: boolean }[]>`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`;
    return { postgresTls: ssl[0]!.ssl };
  } finally {
    await bounded("api.stop", api.stop());
    await bounded("worker.stop", worker.stop());
    await bounded("ctx.db.close", ctx.db.close());
  }
}

describe.skipIf(!tls)("secured Kafka and Postgres (TLS, SASL)", () => {
  const t = tls!;
  const pgTls = () => ({ DATABASE_SSL_CA: t.ca });

  test("Kafka over TLS with a client certificate, Postgres over TLS: a view is counted", async () => {
    const env = {
      KAFKA_BROKERS: t.ssl,
      KAFKA_SECURITY_PROTOCOL: "ssl",
      KAFKA_SSL_CA_LOCATION: t.ca,
      KAFKA_SSL_CERTIFICATE_LOCATION: t.cert,
      KAFKA_SSL_KEY_LOCATION: t.key,
      ...pgTls(),
    };
    expect(await countsOneView(env)).toEqual({ postgresTls: true });
  });

  for (const mechanism of ["SCRAM-SHA-512", "PLAIN"] as const) {
    test(`Kafka over SASL_SSL with ${mechanism}: a view is counted`, async () => {
      const env = {
        KAFKA_BROKERS: t.saslSsl,
        KAFKA_SECURITY_PROTOCOL: "sasl_ssl",
        KAFKA_SSL_CA_LOCATION: t.ca,
        KAFKA_SASL_MECHANISM: mechanism,
        KAFKA_SASL_USERNAME: t.user,
        KAFKA_SASL_PASSWORD: t.password,
      };
      expect(await countsOneView(env)).toEqual({ postgresTls: false });
    });
  }

  test("the topic-id request speaks SCRAM-SHA-256 too, and a wrong password or a foreign CA is refused plainly", async () => {
    const sasl = (password: string) =>
      ({
        protocol: "sasl_ssl",
        caFile: t.ca,
        sasl: { mechanism: "SCRAM-SHA-256", username: t.user, password },
      }) as const;
    const topic = "__consumer_offsets";
    expect((await fetchTopicIdentity([t.saslSsl], topic, sasl(t.password))).clusterId).toBeString();
    const wrong = await fetchTopicIdentity([t.saslSsl], topic, sasl("not-the-password")).catch((e: Error) => e.cause as Error);
    expect(String(wrong)).toContain("authentication failed");
    // A CA that did not sign the broker's certificate: the handshake fails, nothing is sent.
    const foreign = await fetchTopicIdentity([t.saslSsl], topic, { ...sasl(t.password), caFile: t.cert }).catch(
      (e: Error) => e.cause as Error,
    );
    expect(String(foreign)).toMatch(/certificate|verify/i);
  });

  test("Postgres with DATABASE_SSL_CA verifies the server: a foreign CA is refused", async () => {
    const config = loadConfig(testEnv({ DATABASE_SSL_CA: t.cert }));
    const db = connect(config.db, "secured-test");
    afterAll(() => bounded("db.close", db.close()));
    const err = await db.sql`SELECT 1`.catch((e: Error) => e);
    expect(String(err)).toMatch(/certificate|verify/i);
  });
});
