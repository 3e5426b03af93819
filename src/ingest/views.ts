import type { Catalog } from "./catalog.ts";
import type { ViewProducer } from "./producer.ts";
import type { ViewEvent } from "../domain/view.ts";
import { AppError } from "../errors.ts";
import { keyTag, type KeyMemory, type KeySeen } from "./idempotency.ts";
import type { KeyTag } from "./lane-batch.ts";
import type { Admit, Caller, IgnoredReason, PublicItem } from "./admission.ts";

/** What became of a public request: views counted (202), or none, for one reason (200). */
export type PublicOutcome = { counted: number; ignored: number } | { counted: 0; ignored: number; reason: IgnoredReason };

export interface ViewRecorder {
  /**
   * Checks every product exists, then hands the events to Kafka; all or nothing. With an Idempotency-Key
   * (already parsed), a repeat within the window is counted once whatever became of the earlier attempts.
   */
  record(events: readonly ViewEvent[], key?: string): Promise<void>;
  /** A public caller's items, through the rules of ingest/admission.ts first. */
  recordPublic(caller: Extract<Caller, { kind: "public" }>, items: readonly PublicItem[], key?: string): Promise<PublicOutcome>;
}

export interface KeyDeps {
  memory: KeyMemory;
  onRepeat(seen: Exclude<KeySeen, "new">): void;
}

export function createViewRecorder(catalog: Catalog, producer: ViewProducer, keys: KeyDeps, admit: Admit): ViewRecorder {
  async function checkAndPublish(events: readonly ViewEvent[], tag?: KeyTag) {
    let unknown: string[];
    try {
      unknown = await catalog.unknown(events.map((e) => e.product_id));
    } catch (err) {
      // Refused before anything reached Kafka: every 503 of a view endpoint says whether it may be written.
      if (err instanceof AppError && err.code === "database_unavailable") {
        throw new AppError(err.code, err.message, { retryable: true, cause: err.cause, details: { ...err.details, written: "no" } });
      }
      throw err;
    }
    if (unknown.length > 0) {
      // No event is produced for a request that names an unknown product, not even for its known ones.
      throw new AppError(
        "product_not_found",
        unknown.length === 1 ? `product ${unknown[0]} not found` : `${unknown.length} products not found`,
        { details: { unknown_ids: unknown } },
      );
    }
    await producer.publish(events, tag);
  }

  async function record(events: readonly ViewEvent[], key?: string) {
    if (key === undefined) return checkAndPublish(events);
    const tag = { ...keyTag(key, events), at: Date.now() };
    const seen = keys.memory.begin(tag);
    if (seen !== "new") {
      keys.onRepeat(seen);
      if (seen === "accepted") return; // it is counted, or will be: answered like the first attempt
      if (seen === "in_flight") {
        throw new AppError("idempotency_key_in_flight", "a request with this Idempotency-Key is still being processed; retry later", {
          retryable: true,
        });
      }
      throw new AppError("idempotency_key_reused", "this Idempotency-Key was used with a different request body");
    }
    try {
      await checkAndPublish(events, tag);
    } catch (err) {
      keys.memory.failed(tag);
      throw err;
    }
    keys.memory.accepted(tag);
  }

  return {
    record,
    async recordPublic(caller, items, key) {
      const admission = admit(caller, items);
      if (admission.kind === "ignored") return { counted: 0, ignored: admission.views, reason: admission.reason };
      try {
        await record(admission.events, key);
      } catch (err) {
        // Not written: a retry must count. Written or maybe ("unknown"): the mark stays, so a retry is a repeat.
        if (err instanceof AppError && err.details?.written !== "unknown") admission.undo();
        throw err;
      }
      return { counted: admission.events.length, ignored: admission.ignored };
    },
  };
}
