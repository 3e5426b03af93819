// Bounded waits. A promise that may never settle (a client closing against a dead server, a hung query) must not
// hold up whoever awaits it: past the deadline the wait ends, and the work is left to finish or fail on its own.

/** Waits for `work` at most `ms`; resolves `true` if it settled in time (its rejection is swallowed), `false` if not. */
export async function withDeadline(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
