// Bounded waits of the integration tests: for a condition, and for a promise.

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      // A probe that never answers counts as "not yet"; the deadline still holds.
      const left = Math.max(deadline - performance.now(), everyMs);
      const v = await Promise.race([fn(), Bun.sleep(left).then(() => Promise.reject(new Error("the probe did not answer")))]);
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}`);
    await Bun.sleep(everyMs);
  }
}

/** Awaits a stop, and says which one if it does not finish in time (a hung stop must fail, not hang). */
export async function bounded<T>(what: string, work: Promise<T>, timeoutMs = 30_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
