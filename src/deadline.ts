// Bounded waits. A promise that may never settle (a client closing against a dead server, a hung query, a native call
// that cannot be cancelled) must not hold up whoever awaits it: past the deadline the wait ends, and the work is left
// to finish or fail on its own. Every timer is cleared once the race is decided.

async function race<T>(work: Promise<T>, ms: number, onLate: (resolve: (v: T) => void, reject: (e: unknown) => void) => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => onLate(resolve, reject), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for `work` at most `ms`: `true` if it settled in time (a rejection is swallowed: cleanup), `false` if not. */
export function withDeadline(work: Promise<unknown>, ms: number): Promise<boolean> {
  return race(
    work.then(
      () => true,
      () => true,
    ),
    ms,
    (resolve) => resolve(false),
  );
}

/** `true` if `work` resolved within `ms`, `false` if not; its rejection within `ms` is rethrown. */
export function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  return race(
    work.then(() => true),
    ms,
    (resolve) => resolve(false),
  );
}

/** `work`'s result, or `timeout()` thrown once `ms` passed. A late failure of `work` is ignored (it was answered). */
export function orTimeout<T>(work: Promise<T>, ms: number, timeout: () => unknown): Promise<T> {
  work.catch(() => {});
  return race(work, ms, (_, reject) => reject(timeout()));
}
