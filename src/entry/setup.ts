import type { Config } from "../config.ts";
import { createLogger } from "../log.ts";
import { connect } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { maintainPartitions } from "../db/history-partitions.ts";
import { ensureTopic } from "../kafka/admin.ts";

/** Idempotent: creates the topic if missing and applies pending migrations. */
export async function setup(config: Config, opts: { topic: boolean }): Promise<void> {
  const log = createLogger(config.logLevel, "setup");
  const database = connect(config.db, "product-views-setup");
  try {
    const applied = await migrate(database.sql);
    log.info({ applied }, applied.length ? "migrations applied" : "schema up to date");
    const partitions = await maintainPartitions(database.sql, Date.now(), config.history);
    log.info(partitions, "history partitions ready");
  } finally {
    await database.close();
  }
  if (opts.topic) {
    const t = await ensureTopic(config.kafka);
    if (t.partitions !== config.kafka.partitions) {
      log.warn(
        { topic: config.kafka.topic, partitions: t.partitions, configured: config.kafka.partitions },
        "topic exists with another partition count; left unchanged",
      );
    }
    log.info({ topic: config.kafka.topic, created: t.created, partitions: t.partitions }, "topic ready");
  }
}
