import type { Config } from "../config.ts";
import { connect } from "../db/client.ts";
import { createTopicAdmin } from "../kafka/admin.ts";
import { fetchTopicIdentity } from "../kafka/topic-id.ts";
import { offsetProblem, type OffsetProblem } from "../worker/offset-check.ts";
import { loadOffsets, rebaseOffsets } from "../db/offsets.ts";

/**
 * `bun src/main.ts rebase-offsets [--apply]`: lists the partitions whose stored offset does not fit the
 * topic's log (recreated topic, wiped Kafka data, messages deleted before they were counted) and, with
 * --apply, moves each one's stored offset to the start of its log (and records the topic's current id). After a reset that counts every message
 * now in the topic; after a truncation the deleted messages are given up (they are gone from Kafka).
 * Workers hold such partitions until then, and resume within seconds of it.
 */
export async function rebase(config: Config, apply: boolean): Promise<OffsetProblem[]> {
  const database = connect(config.db, "product-views-rebase");
  const admin = createTopicAdmin(config.kafka);
  try {
    const marks = await admin.watermarks();
    const { topicId } = await fetchTopicIdentity(config.kafka.brokers, config.kafka.topic, config.kafka.security);
    const stored = await loadOffsets(database.db, config.kafka.topic, [...marks.keys()]);
    const problems = [...marks].flatMap(([p, w]) => offsetProblem(p, stored.get(p)!, topicId, w) ?? []);
    for (const p of problems) {
      const ids = p.kind === "topic_changed" ? ` (topic id ${p.storedTopicId} -> ${p.topicId})` : "";
      console.log(
        `partition ${p.partition}: ${p.kind}${ids}: stored next offset ${p.stored}, log ${p.low}..${p.high}${apply ? ` -> re-based to ${p.low}` : ""}`,
      );
    }
    if (problems.length === 0) console.log(`topic ${config.kafka.topic}: every stored offset fits the log; nothing to re-base`);
    else if (!apply) console.log("dry run: run again with --apply to re-base these partitions");
    if (apply) await rebaseOffsets(database.db, config.kafka.topic, new Map(problems.map((p) => [p.partition, p.low!])), topicId);
    return problems;
  } finally {
    await admin.close();
    await database.close();
  }
}
