import type { DeadLetter } from "../kafka/dead-letter.ts";
import type { Message } from "../kafka/ffi-consumer.ts";
import { limitedLog, type Logger } from "../log.ts";
import { readViewMessage, type ViewMessage } from "../domain/view.ts";
import { NO_OFFSET } from "../db/offsets.ts";
import type { Coalescer } from "./coalescer.ts";
import type { ConsumerMetrics } from "./consumer-metrics.ts";

/**
 * The message's views, or null when they cannot be counted exactly: then, if it is the partition's next message
 * (not a replay or a late one), it is copied to the dead-letter topic before the offset moves past it. A copy that
 * fails is logged with the message's place (it stays readable in the topic for its retention) and the worker moves
 * on all the same: one message must not stop every count.
 */
export function createMessageReader(deps: {
  coalescer: Pick<Coalescer, "fits" | "expected">;
  deadLetter(letter: DeadLetter): Promise<void>;
  m: ConsumerMetrics;
  log: Logger;
}) {
  const { coalescer, m } = deps;
  const letterLog = limitedLog(deps.log, 10_000);
  return async function read(msg: Message): Promise<ViewMessage | null> {
    const read = readViewMessage(msg.payload);
    let reason: string;
    if ("error" in read) reason = read.error;
    else if (!coalescer.fits(msg.partition, read.views, read.keyed)) {
      reason = "its counts cannot be held exactly with the views pending (a sum past 2^53)";
    } else return read;
    const expected = coalescer.expected(msg.partition);
    if (expected !== msg.offset && expected !== NO_OFFSET) return null;
    const where = { partition: msg.partition, offset: msg.offset, reason };
    try {
      await deps.deadLetter({ ...where, payload: msg.payload });
      m.deadLetters.inc({ result: "written" });
      letterLog("warn", where, "message dead-lettered");
    } catch (err) {
      m.deadLetters.inc({ result: "failed" });
      letterLog("error", { err, ...where }, "could not dead-letter a message; skipped");
    }
    return null;
  };
}
