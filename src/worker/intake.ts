import type { Message } from "../kafka/ffi-consumer.ts";
import { type ViewMessage, viewCount } from "../domain/view.ts";
import type { AddResult, Coalescer } from "./coalescer.ts";
import type { ConsumerMetrics } from "./consumer-metrics.ts";
import type { GapTracker } from "./gaps.ts";
import type { OffsetGuard } from "./offset-guard.ts";

const viewsIn = (m: ViewMessage) => m.keyed.reduce((n, k) => n + viewCount(k.views), viewCount(m.views));

/**
 * A fetched batch into the coalescer, in offset order per partition: each partition's base is loaded first (and
 * checked against the log), a held partition's messages are skipped, and a gap in the offsets seeks back to the
 * next uncounted one.
 */
export function createIntake(deps: {
  coalescer: Coalescer;
  guard: OffsetGuard;
  gaps: GapTracker;
  read: (msg: Message) => Promise<ViewMessage | null>;
  seek: (partition: number, offset: number) => void;
  isStopping: () => boolean;
  m: ConsumerMetrics;
}) {
  const { coalescer, guard, gaps, m } = deps;

  function account(msg: Message, result: AddResult | "held") {
    m.consumed.inc({ outcome: result });
    if (result === "counted" || result === "malformed") gaps.clear(msg.partition);
    if (result === "gap") {
      const expected = coalescer.expected(msg.partition)!;
      if (gaps.onGap(msg.partition, expected, performance.now())) deps.seek(msg.partition, expected);
    } else if (result === "duplicate") guard.onDuplicate(performance.now());
  }

  return async function take(messages: Message[]) {
    await guard.ensureBases([...new Set(messages.filter((x) => !coalescer.hasBase(x.partition)).map((x) => x.partition))], deps.isStopping);
    for (const msg of messages) {
      if (guard.isHeld(msg.partition)) {
        account(msg, "held");
        continue;
      }
      const decoded = await deps.read(msg);
      const result = coalescer.add(msg.partition, msg.offset, decoded?.views ?? null, decoded?.keyed, decoded?.at);
      if (result === "counted") m.viewsRead.inc(undefined, viewsIn(decoded!));
      account(msg, result);
    }
  };
}
