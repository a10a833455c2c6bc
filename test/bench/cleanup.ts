/**
 * Everything the bench sets up is taken down again, last first, whether it finishes, throws, or is interrupted
 * (Ctrl-C, SIGTERM). The fixtures take a node:test-like `{ after(fn) }`; this is one for a plain program.
 *
 * Processes go first and at once: on a signal, every process group registered with killOnSignal() is sent SIGKILL
 * synchronously, before the fixtures' own exit net (test/fixtures/loop-cleanup.ts) lazily unmounts what they use.
 * Install this before any fixture, so that its signal handler runs first.
 */
export class Cleanup {
  readonly #steps: Array<() => Promise<void> | void> = [];
  readonly #groups = new Set<number>();
  #running: Promise<void> | null = null;

  /** Runs `fn` at the end, before whatever was registered earlier. */
  after(fn: () => Promise<void> | void): void {
    this.#steps.push(fn);
  }

  /** A process group (its leader's pid) to SIGKILL at once on a signal, ahead of the ordered steps. */
  killOnSignal(pgid: number): () => void {
    this.#groups.add(pgid);
    return () => this.#groups.delete(pgid);
  }

  /** Runs every step once, newest first; a step that fails is reported and the others still run. */
  run(): Promise<void> {
    this.#running ??= (async () => {
      while (this.#steps.length > 0) {
        const step = this.#steps.pop() as () => Promise<void> | void;
        try {
          await step();
        } catch (err) {
          process.stderr.write(`bench cleanup: ${err instanceof Error ? err.message : String(err)}\n`);
        }
      }
    })();
    return this.#running;
  }

  /** On SIGINT, SIGTERM or SIGHUP: kill the registered groups now, run the steps, exit 128 + signal number. */
  installSignalHandlers(): void {
    const numbers = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
    for (const signal of Object.keys(numbers) as Array<keyof typeof numbers>) {
      process.on(signal, () => {
        if (this.#running === null) process.stderr.write(`\nbench: ${signal}, cleaning up\n`);
        for (const pgid of this.#groups) {
          try {
            process.kill(-pgid, 'SIGKILL');
          } catch {
            // Already gone.
          }
        }
        void this.run().finally(() => process.exit(128 + numbers[signal]));
      });
    }
  }
}
