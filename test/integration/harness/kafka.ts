// What the tests read or change in Kafka directly: topics, group offsets, leaders, members.
import { createConsumer } from "../../../src/kafka/client.ts";
import type { Message } from "../../../src/kafka/ffi-consumer.ts";
import { AssignerProtocol, Kafka, logLevel } from "kafkajs";
import type { Config } from "../../../src/config.ts";
import { createLogger } from "../../../src/log.ts";
import { uniqueName } from "./stack.ts";
import { waitFor } from "./wait.ts";

/** Every message of a topic from the beginning, read with a throw-away consumer group. */
export async function readTopic(config: Config, expected: number, timeoutMs = 20_000): Promise<Message[]> {
  const consumer = createConsumer(
    config.kafka,
    "test-reader",
    { "group.id": uniqueName("reader"), "enable.auto.commit": false, "auto.offset.reset": "earliest" },
    createLogger("error", "test-reader"),
    { headers: true },
  );
  await consumer.subscribe(config.kafka.topic);
  const out: Message[] = [];
  const deadline = performance.now() + timeoutMs;
  let quietSince = performance.now();
  try {
    while (performance.now() < deadline) {
      const batch = await consumer.recvBatch(1000, 200);
      if (batch.length > 0) quietSince = performance.now();
      out.push(...batch);
      // Past the expected count, keep reading briefly so an extra (duplicate) message would be seen too.
      if (out.length >= expected && performance.now() - quietSince > 1000) break;
    }
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/** Deletes the topic and creates it again, empty (as after a wipe of Kafka's data): offsets restart at 0. */
export async function recreateTopic(config: Config, extra: { configEntries?: { name: string; value: string }[] } = {}): Promise<void> {
  const admin = kafkaAdmin(config);
  await admin.connect();
  try {
    if ((await admin.listTopics()).includes(config.kafka.topic))
      await admin.deleteTopics({ topics: [config.kafka.topic], timeout: 10_000 });
    await waitFor(
      "topic created again",
      async () => {
        await admin.createTopics({
          waitForLeaders: true,
          topics: [{ topic: config.kafka.topic, numPartitions: config.kafka.partitions, replicationFactor: -1, ...extra }],
        });
        return true;
      },
      30_000,
      250,
    );
  } finally {
    await admin.disconnect();
  }
}

/** Moves a (memberless) consumer group's committed offset, as a restore or an operator could. */
export async function setGroupOffset(config: Config, groupId: string, partition: number, offset: number): Promise<void> {
  const admin = kafkaAdmin(config);
  await admin.connect();
  try {
    await waitFor(
      "group offset set",
      async () => {
        await admin.setOffsets({ groupId, topic: config.kafka.topic, partitions: [{ partition, offset: String(offset) }] });
        return true;
      },
      30_000,
      250,
    );
  } finally {
    await admin.disconnect();
  }
}

/** Each partition of the topic: its leader's node id and its in-sync replicas. */
export async function partitionLeaders(config: Config): Promise<Map<number, { leader: number; isr: number[] }>> {
  const admin = kafkaAdmin(config);
  await admin.connect();
  try {
    const meta = await admin.fetchTopicMetadata({ topics: [config.kafka.topic] });
    return new Map((meta.topics[0]?.partitions ?? []).map((p) => [p.partitionId, { leader: p.leader, isr: p.isr }]));
  } finally {
    await Promise.race([admin.disconnect().catch(() => {}), Bun.sleep(2000)]);
  }
}

/** The group as the broker sees it: state and member count. */
export async function describeGroup(config: Config, groupId: string): Promise<{ state: string; members: number }> {
  const { state, members } = await groupAssignments(config, groupId);
  return { state, members: members.length };
}

/** The group's members and the partitions the broker's last assignment gave each (what a stuck partition's owner is). */
export async function groupAssignments(
  config: Config,
  groupId: string,
): Promise<{ state: string; members: Array<{ memberId: string; partitions: number[] }> }> {
  const admin = kafkaAdmin(config);
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    const members = (groups[0]?.members ?? []).map((m) => {
      const decoded = m.memberAssignment.length > 0 ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null;
      return { memberId: m.memberId, partitions: decoded?.assignment[config.kafka.topic] ?? [] };
    });
    return { state: groups[0]?.state ?? "Unknown", members };
  } finally {
    await Promise.race([admin.disconnect().catch(() => {}), Bun.sleep(2000)]);
  }
}

function kafkaAdmin(config: Config) {
  return new Kafka({ clientId: "test-admin", brokers: [...config.kafka.brokers], logLevel: logLevel.NOTHING }).admin();
}
