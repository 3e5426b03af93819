import type { ViewEvent } from "../domain/view.ts";
import type { Registry } from "../metrics.ts";
import type { KeyTag } from "./lane-batch.ts";
import { createOrderedMap } from "./ordered-map.ts";

// Idempotency-Key (IETF httpapi draft) at the API: what this process remembers of the keys it saw. The memory
// answers repeats fast (202 without another Kafka message; 409 while the first attempt is in flight; 422 for
// another body) but it is per process and bounded, so it is not what makes a repeat count once: the worker is
// (a keyed request travels under its key's digest and is counted only if that key was not counted within the
// window; db/flush.ts).

/** The digests a keyed request travels under: of the key, and of its views as the worker will count them. */
export function keyTag(key: string, events: readonly ViewEvent[]): KeyTag {
  let canonical = "";
  for (const e of events) canonical += `${e.product_id}:${e.count},`;
  return { key: Bun.MD5.hash(key, "hex") as string, fp: Bun.MD5.hash(canonical, "hex") as string };
}

export type KeySeen = "new" | "accepted" | "in_flight" | "mismatch";

export interface KeyMemory {
  /** What this process knows of the tag's key; "new" also marks it in flight. */
  begin(tag: KeyTag): KeySeen;
  /** The attempt got 202: repeats within the window are answered 202 without producing again. */
  accepted(tag: KeyTag): void;
  /** The attempt ended without 202: forgotten, so a retry is produced again (the worker counts it once). */
  failed(tag: KeyTag): void;
  size(): number;
}

interface Remembered {
  fp: string;
  inFlight: boolean;
  until: number;
}

export function createKeyMemory(opts: { windowMs: number; maxKeys: number; now?: () => number }): KeyMemory {
  const now = opts.now ?? (() => performance.now());
  // Insertion order is expiry order (every entry lives windowMs from its last write, and a write re-inserts),
  // so expired entries are always the oldest, and the oldest go first when the memory is full.
  const keys = createOrderedMap<Remembered>();
  const sweep = (t: number) => {
    for (let o = keys.oldest(); o && o.value.until <= t; o = keys.oldest()) keys.deleteOldest();
  };
  return {
    begin(tag) {
      const t = now();
      sweep(t);
      const r = keys.get(tag.key);
      if (r) {
        if (r.fp !== tag.fp) return "mismatch";
        return r.inFlight ? "in_flight" : "accepted";
      }
      keys.set(tag.key, { fp: tag.fp, inFlight: true, until: t + opts.windowMs });
      if (keys.size > opts.maxKeys) keys.deleteOldest();
      return "new";
    },
    accepted(tag) {
      const r = keys.get(tag.key);
      if (!r || r.fp !== tag.fp) return;
      keys.set(tag.key, { fp: tag.fp, inFlight: false, until: now() + opts.windowMs });
    },
    failed(tag) {
      const r = keys.get(tag.key);
      if (r && r.fp === tag.fp && r.inFlight) keys.delete(tag.key);
    },
    size: () => keys.size,
  };
}

/** The memory with its metrics: how repeats were answered, and how many keys it holds. */
export function keyMemoryMetrics(memory: KeyMemory, metrics: Registry) {
  const repeats = metrics.counter(
    "idempotent_repeats_total",
    "Requests whose Idempotency-Key this process had seen in the window, by answer (accepted: 202 without producing)",
  );
  metrics.gauge("idempotency_keys_remembered", "Idempotency keys this API process remembers", () => memory.size());
  return { repeat: (seen: Exclude<KeySeen, "new">) => repeats.inc({ answer: seen }) };
}
