import type { Watermarks } from "../kafka/admin.ts";
import type { Logger } from "../log.ts";
import type { Registry } from "../metrics.ts";
import { backoff } from "../backoff.ts";
import { offsetProblem, type OffsetProblem } from "./offset-check.ts";
import { createHeldPartitions } from "./held-partitions.ts";
import type { StoredOffset } from "../db/offsets.ts";

// Where each partition starts, and whether it may be applied at all. A partition's base (the offset Postgres
// says is next) is set only after it was checked against the log as Kafka has it now (topic id, watermarks):
// stored offsets of a replaced log (topic recreated, Kafka's data wiped) or below a truncated log start would
// silently drop or skip views, so such a partition is held (metric, error log, /ready 503) until an operator
// re-bases it with `bun src/main.ts rebase-offsets`, and released as soon as its offsets fit again.

export interface OffsetStore {
  loadOffsets(partitions: readonly number[]): Promise<Map<number, StoredOffset>>;
  watermarks(): Promise<Map<number, Watermarks>>;
  /** The topic's id now (null: the topic does not exist); rejects when Kafka cannot be asked. */
  topicId(): Promise<string | null>;
}

/** What the guard sets and reads of the coalescer. */
export interface Bases {
  hasBase(partition: number): boolean;
  setBase(partition: number, nextOffset: number): void;
  expected(partition: number): number | undefined;
}

export interface OffsetGuard {
  /** Loads and checks the bases of partitions not known yet, retrying until it can (or `stopping()`). */
  ensureBases(partitions: readonly number[], stopping: () => boolean): Promise<void>;
  isHeld(partition: number): boolean;
  held(): OffsetProblem[];
  /** A replayed message was read: at most every few seconds, checks whether the log under it was replaced. */
  onDuplicate(now: number): void;
  /** Re-checks held partitions (every few seconds); those that fit again get their base and are returned. */
  recheckHeld(now: number): Promise<Array<{ partition: number; next: number }>>;
  /** The topic id the bases were checked against (flushes record it with the offsets). */
  topicId(): string | null;
  setTopicId(id: string | null): void;
}

const HELD_RECHECK_MS = 3000;
const RESET_CHECK_MS = 2000;

export function createOffsetGuard(
  store: OffsetStore,
  bases: Bases,
  forget: (partition: number) => void,
  log: Logger,
  metrics: Registry,
): OffsetGuard {
  const held = createHeldPartitions(forget, log, metrics);
  let topicId: string | null = null;
  let lastResetCheck = 0;
  let lastHeldCheck = 0;
  const { hold, release } = held;

  const watermarksOrNone = () => readWatermarks(store, log);
  /** The partition's base is set when its stored offset fits the log; otherwise its problem is returned. */
  function settle(p: number, s: StoredOffset, id: string | null, mark: Watermarks | undefined): OffsetProblem | null {
    const problem = offsetProblem(p, s, id, mark);
    if (problem) return problem;
    release(p, s.next);
    bases.setBase(p, s.next);
    return null;
  }

  /** The stored offsets of partitions without a base, each checked against the log: a base set, or held. */
  async function loadBases(partitions: readonly number[]) {
    const stored = await store.loadOffsets(partitions);
    const anyStored = [...stored.values()].some((o) => o.next >= 0);
    const [id, marks] = await Promise.all([store.topicId(), anyStored ? watermarksOrNone() : null]);
    topicId = id;
    for (const [p, s] of stored) {
      if (bases.hasBase(p)) continue;
      const problem = settle(p, s, id, marks?.get(p));
      if (problem) hold(problem);
    }
  }

  return {
    async ensureBases(partitions, stopping) {
      if (partitions.length === 0) return;
      for (let attempt = 0; ; attempt++) {
        try {
          return await loadBases(partitions);
        } catch (err) {
          if (stopping()) throw err;
          if (attempt === 0) log.warn({ err }, "cannot read stored offsets or the topic's id; retrying");
          await Bun.sleep(backoff(attempt));
        }
      }
    },
    isHeld: (p) => held.has(p),
    held: () => held.list(),
    onDuplicate(now) {
      if (now - lastResetCheck <= RESET_CHECK_MS) return;
      lastResetCheck = now;
      void resetProblems(store, bases, () => topicId, log).then((problems) => problems.forEach(hold));
    },
    async recheckHeld(now) {
      if (held.size() === 0 || now - lastHeldCheck <= HELD_RECHECK_MS) return [];
      lastHeldCheck = now;
      const partitions = held.partitions();
      const stored = await store.loadOffsets(partitions).catch(() => null);
      const id = stored && (await store.topicId().catch(() => undefined));
      const marks = stored && id !== undefined && (await watermarksOrNone());
      if (!stored || id === undefined || !marks) return [];
      topicId = id;
      const released: Array<{ partition: number; next: number }> = [];
      for (const p of partitions) {
        const s = stored.get(p)!;
        const problem = settle(p, s, id, marks.get(p));
        if (problem) held.update(problem);
        else released.push({ partition: p, next: s.next });
      }
      return released;
    },
    topicId: () => topicId,
    setTopicId(id) {
      topicId = id;
    },
  };
}

/** Duplicates are normal while replaying; from another topic id, or below a log end under them, a reset. */
async function resetProblems(store: OffsetStore, bases: Bases, topicId: () => string | null, log: Logger): Promise<OffsetProblem[]> {
  const [id, marks] = await Promise.all([store.topicId().catch(() => null), readWatermarks(store, log)]);
  const problems: OffsetProblem[] = [];
  for (const p of marks?.keys() ?? []) {
    const next = bases.expected(p);
    if (next === undefined) continue;
    const problem = offsetProblem(p, { next, topicId: topicId() }, id, marks!.get(p));
    if (problem && problem.kind !== "log_truncated") problems.push(problem);
  }
  return problems;
}

async function readWatermarks(store: OffsetStore, log: Logger): Promise<Map<number, Watermarks> | null> {
  try {
    return await store.watermarks();
  } catch (err) {
    log.debug({ err }, "cannot read the log's watermarks; offsets not checked this time");
    return null;
  }
}
