import type { FfiConsumer, RebalanceEvent } from "../kafka/ffi-consumer.ts";
import { backoff } from "../backoff.ts";
import type { Logger } from "../log.ts";
import type { ConsumerMetrics } from "./consumer-metrics.ts";
import { retire } from "./retire.ts";

export interface ConsumerSourceDeps {
  topic: string;
  make: () => FfiConsumer;
  /** A partition moved (either way): whatever is held for it is dropped, not flushed. */
  forget: (partition: number) => void;
  /** The client ids of the group's members; rejects when Kafka cannot be asked. */
  groupMembers: () => Promise<string[]>;
  isStopping: () => boolean;
  subscribeAttempts: number;
  m: ConsumerMetrics;
  log: Logger;
}

/**
 * The Kafka consumer the worker reads through, and the one place that knows it can be replaced: every call goes
 * to the current one. It subscribes with retries, follows rebalances, seeks, and retires an old consumer from
 * the group before the next one joins.
 */
export function createConsumerSource(deps: ConsumerSourceDeps) {
  const { topic, m, log } = deps;
  const isMember = async (clientId: string) => (await deps.groupMembers()).includes(clientId);

  function onEvents(error: Error | undefined, event: RebalanceEvent) {
    if (error) {
      log.warn({ err: error }, "consumer event error");
      return;
    }
    if (event.name !== "PreRebalance" && event.name !== "PostRebalance") return;
    m.rebalances.inc({ event: event.name, action: event.payload.action ?? "" });
    // The next owner (maybe us again) replays from Kafka's committed offset, and Postgres' stored offset skips
    // what was already counted.
    const parts = event.payload.tpl.filter((t) => t.topic === topic).flatMap((t) => t.partitionOffset.map((p) => p.partition));
    for (const p of parts) deps.forget(p);
    if (parts.length) log.info({ event: event.name, action: event.payload.action, partitions: parts }, "rebalance");
  }

  let current = deps.make();
  current.onEvents(onEvents);

  async function subscribe() {
    for (let attempt = 0; ; attempt++) {
      try {
        await current.subscribe(topic);
        return;
      } catch (err) {
        if (deps.isStopping()) throw err;
        if (attempt + 1 >= deps.subscribeAttempts) throw new Error(`cannot subscribe to ${topic}`, { cause: err });
        log.warn({ err, attempt }, "subscribe failed; retrying");
        await Bun.sleep(backoff(attempt + 2));
      }
    }
  }

  return {
    subscribe,
    /** The old consumer leaves the group, a new one joins; its partitions start from Kafka's committed offsets. */
    async replace() {
      await retire(current, isMember);
      current = deps.make();
      current.onEvents(onEvents);
      await subscribe();
    },
    retire: () => retire(current, isMember),
    recvBatch: (size: number, waitMs: number) => current.recvBatch(size, waitMs),
    commit: (partition: number, offset: number) => current.commit(topic, partition, offset),
    pause: () => current.pause(),
    resume: () => current.resume(),
    /** Back to the next uncounted offset: after a gap in the fetched offsets, or as the first answer to a stall. */
    seek(partition: number, offset: number, after: "gap" | "stall" = "gap") {
      if (after === "gap") m.seeks.inc();
      try {
        current.seek(topic, partition, offset);
        log.info({ partition, offset, after }, "sought back to the next uncounted offset");
      } catch (err) {
        // Not assigned right now (being moved): the gap tracker retries; the next owner starts from Postgres.
        log.warn({ partition, offset, after, err }, "seek back to the next uncounted offset failed");
      }
    },
    /** The partitions librdkafka says this consumer holds now (null: it cannot say). */
    assigned(): number[] | null {
      try {
        return current
          .assignment()
          .filter((t) => t.topic === topic)
          .flatMap((t) => t.partitionOffset.map((p) => p.partition));
      } catch {
        return null;
      }
    },
  };
}

export type ConsumerSource = ReturnType<typeof createConsumerSource>;
