/** Exponential backoff: `baseMs` doubled per attempt (0, 1, 2, ...), at most `maxMs`. One curve for every retry loop. */
export function backoff(attempt: number, { baseMs = 100, maxMs = 5000 }: { baseMs?: number; maxMs?: number } = {}): number {
  return Math.min(baseMs * 2 ** attempt, maxMs);
}
