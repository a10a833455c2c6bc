/**
 * A task run every so often in the background (the expiry sweep, the retries of waiting receives, the sweep of
 * orphaned spools): never two runs at once (a slow disk can make one run longer than the period), never keeping a
 * stopping process alive, and stopped by waiting for the run under way.
 */
export interface Periodic {
  /** Stops the timer and resolves once a run under way has ended. */
  stop(): Promise<void>;
}

/** Runs `task` every `everyMs`; a failed run is handed to `failed` and the next run goes on as usual. */
export function runEvery(everyMs: number, task: () => Promise<void>, failed: (err: unknown) => void): Periodic {
  let running: Promise<void> | null = null;
  const timer = setInterval(() => {
    running ??= task()
      .catch(failed)
      .finally(() => {
        running = null;
      });
  }, everyMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return running ?? Promise.resolve();
    },
  };
}
