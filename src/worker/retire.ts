import type { FfiConsumer } from "../kafka/ffi-consumer.ts";
import { withDeadline } from "../deadline.ts";

/**
 * Takes a consumer out of the group before it is dropped. unsubscribe() starts a revocation (and, when a
 * rebalance is under way, waits for it) that librdkafka completes, and then sends LeaveGroup, only inside
 * polls; a consumer nobody polls any more stays a member, and every rebalance waits for it with nobody fetching
 * (seconds per replaced consumer on one broker; in a rolling restart, members holding half the partitions for
 * long after they lost them). So it is polled until the group's coordinator no longer lists it (bounded).
 * Messages read here are not counted: the next holder reads them again from Postgres' offsets.
 */
export async function retire(old: FfiConsumer, stillMember: (clientId: string) => Promise<boolean>, drainMs = 15_000): Promise<void> {
  try {
    old.unsubscribe();
  } catch {}
  const deadline = performance.now() + drainMs;
  while (performance.now() < deadline) {
    await old.recvBatch(100, 100).catch(() => Bun.sleep(100));
    let holds = 0;
    try {
      holds = old.assignment().length;
    } catch {}
    // Kafka unreachable: assume it is still a member (the loop is bounded).
    if (holds === 0 && !(await stillMember(old.clientId).catch(() => true))) break;
  }
  await withDeadline(
    old.disconnect().catch(() => {}),
    5000,
  );
}
