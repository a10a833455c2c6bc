/**
 * Backoff with full jitter for the push loop (docs/design.md, "Retries, stalls and Retry-After": ride out a daily cut without a person). Only errors that
 * say they are retryable are retried; the delay grows while nothing moves and starts small again after progress.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface BackoffOptions {
  /** Failures in a row without progress before giving up; Infinity retries forever. */
  retries: number;
  baseMs: number;
  maxMs: number;
}

// Capped at 15 s: after a line comes back (a silence, a reconnect) the push should be moving again within the stall
// timeout plus this, not wait out a minute-long backoff it grew while the line was down.
export const DEFAULT_BACKOFF: BackoffOptions = { retries: Infinity, baseMs: 1000, maxMs: 15_000 };

export class Backoff {
  private failures = 0;

  constructor(private readonly options: BackoffOptions = DEFAULT_BACKOFF) {}

  /** Progress was made: the next failure waits the shortest time again. */
  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }

  /** Counts a failure; returns the delay before the next try, or null when the retries are used up. */
  next(): number | null {
    this.failures++;
    if (this.failures > this.options.retries) return null;
    const cap = Math.min(this.options.maxMs, this.options.baseMs * 2 ** Math.min(this.failures - 1, 30));
    return Math.round(cap / 2 + Math.random() * (cap / 2));
  }

  async wait(ms: number, signal?: AbortSignal): Promise<void> {
    await sleep(ms, undefined, signal ? { signal } : {});
  }
}
