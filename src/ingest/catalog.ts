import { AppError } from "../errors.ts";
import { createIdSet } from "./id-set.ts";
import { createOrderedMap } from "./ordered-map.ts";

// Which product ids exist, without a Postgres round trip per view in steady state.
// Products are never deleted through the API, so a known id stays known (bounded, oldest evicted first).
// An unknown id is remembered for a short TTL only, because it may be created a moment later;
// creation through this API also clears it at once (remember()).
// Misses of one event-loop turn are looked up together in one query.

export interface Catalog {
  /** The ids (lower-case) among `ids` that do not exist. */
  unknown(ids: readonly string[]): Promise<string[]>;
  remember(id: string): void;
}

export interface CatalogOptions {
  maxKnown?: number;
  negativeTtlMs?: number;
  maxNegative?: number;
}

type Lookup = (ids: string[]) => Promise<Set<string>>;

export function createCatalog(lookup: Lookup, opts: CatalogOptions = {}): Catalog {
  const maxKnown = opts.maxKnown ?? 500_000;
  const negativeTtlMs = opts.negativeTtlMs ?? 2000;
  const maxNegative = opts.maxNegative ?? 50_000;
  const known = createIdSet(maxKnown);
  const missing = createOrderedMap<number>(); // id -> expiry (ms)
  let batch: Map<string, PromiseWithResolvers<boolean>> | null = null;

  async function runBatch(pending: Map<string, PromiseWithResolvers<boolean>>) {
    try {
      const found = await lookup([...pending.keys()]);
      const expires = performance.now() + negativeTtlMs;
      for (const [id, d] of pending) {
        if (found.has(id)) known.add(id);
        else {
          if (missing.size >= maxNegative) missing.deleteOldest();
          missing.set(id, expires);
        }
        d.resolve(found.has(id));
      }
    } catch (cause) {
      const err = new AppError("database_unavailable", "product lookup is unavailable; retry later", { cause, retryable: true });
      for (const d of pending.values()) d.reject(err);
    }
  }

  function exists(id: string): boolean | Promise<boolean> {
    if (known.has(id)) return true;
    const exp = missing.get(id);
    if (exp !== undefined) {
      if (exp > performance.now()) return false;
      missing.delete(id);
    }
    if (!batch) {
      const b = new Map<string, PromiseWithResolvers<boolean>>();
      batch = b;
      queueMicrotask(() => {
        batch = null;
        void runBatch(b);
      });
    }
    let d = batch.get(id);
    if (!d) {
      d = Promise.withResolvers<boolean>();
      batch.set(id, d);
    }
    return d.promise;
  }

  return {
    async unknown(ids) {
      const answers = ids.map((id) => exists(id));
      const out: string[] = [];
      for (let i = 0; i < ids.length; i++) {
        const a = answers[i]!;
        if (!(a === true || (a !== false && (await a)))) out.push(ids[i]!);
      }
      return out;
    },
    remember(id) {
      missing.delete(id);
      known.add(id);
    },
  };
}
