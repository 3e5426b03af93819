// A ranking as the API serves it: the current rows, their JSON per limit (serialised once per change, not per
// request), and listeners told when the ranking or a listed count changed (the live streams). Shared by every
// ranking (top.ts, top-window.ts).

export interface Published<R> {
  rows(): R[];
  /** Replaces the rows; listeners hear of it when what `signature` says about them changed. */
  set(rows: R[]): void;
  json(limit: number): string;
  onChange(listener: () => void): () => void;
}

export function createPublished<R>(signature: (r: R) => string): Published<R> {
  let rows: R[] = [];
  let json = new Map<number, string>();
  let last = "";
  const listeners = new Set<() => void>();
  return {
    rows: () => rows,
    set(next) {
      rows = next;
      json = new Map();
      const sig = next.map(signature).join(",");
      if (sig === last) return;
      last = sig;
      for (const l of listeners) l();
    },
    json(limit) {
      let text = json.get(limit);
      if (text === undefined) {
        text = JSON.stringify(rows.length <= limit ? rows : rows.slice(0, limit));
        json.set(limit, text);
      }
      return text;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
