/**
 * Runs `tick` every `intervalMs`, one at a time (a slow tick delays the next, never overlaps it), without keeping the
 * process alive. stop() waits for the tick under way; `stopped()` lets a long tick end early.
 */
export function startEvery(intervalMs: number, tick: (stopped: () => boolean) => Promise<void>) {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(() => tick(() => stopped));
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
