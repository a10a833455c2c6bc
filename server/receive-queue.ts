/**
 * Receives run one at a time, each keyed by its transfer id. @tus/server's finish hook can fire twice for one upload
 * (an empty PATCH at the end offset), and a restart finds unfinished receives again: adding an id that is already
 * queued or running does nothing, and the job itself re-reads the catalog and returns when there is nothing to do.
 */
import type { Logger } from './log.ts';

export class ReceiveQueue {
  private readonly queued = new Set<string>();
  private tail: Promise<void> = Promise.resolve();
  private release: (() => void) | null = null;

  constructor(
    private readonly job: (id: string) => Promise<void>,
    private readonly log: Logger,
    /** Hold jobs until resume(): a server that must not receive yet (and tests of a crash before the receive). */
    held = false,
  ) {
    if (held) this.tail = new Promise((resolve) => (this.release = resolve));
  }

  resume(): void {
    this.release?.();
    this.release = null;
  }

  get pending(): number {
    return this.queued.size;
  }

  add(id: string): void {
    if (this.queued.has(id)) return;
    this.queued.add(id);
    this.tail = this.tail.then(async () => {
      try {
        await this.job(id);
      } catch (err) {
        this.log.error({ transfer: id, err }, 'receive job crashed');
      } finally {
        this.queued.delete(id);
      }
    });
  }

  async idle(): Promise<void> {
    if (this.release) return;
    while (this.queued.size > 0) await this.tail;
  }
}
