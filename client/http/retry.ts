/**
 * Backoff with full jitter for the push loop (docs/design.md, "Retries, stalls and Retry-After": ride out a daily cut without a person). Only errors that
 * say they are retryable are retried; the delay grows while nothing moves and starts small again after progress.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SnapferryError, describeError } from '../../core/errors.ts';
import { chooseWait } from './retry-after.ts';

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

export interface RetryingOptions {
  backoff?: Partial<BackoffOptions>;
  signal?: AbortSignal;
  /** Told of each wait before a retry, for the user. */
  note?: (message: string) => void;
}

/**
 * Runs `fn` until it succeeds or fails in a way a retry cannot heal, waiting max(own backoff, the server's
 * Retry-After) in between: for the commands made of a few requests (verify's, status's), as the push loop does for
 * its own. A message that says "waiting" is then kept: the note says how long.
 */
export async function retrying<T>(fn: () => Promise<T>, options: RetryingOptions): Promise<T> {
  const backoff = new Backoff({ ...DEFAULT_BACKOFF, ...options.backoff });
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof SnapferryError && err.retryable) || options.signal?.aborted) throw err;
      const delay = backoff.next();
      if (delay === null) throw err;
      const wait = chooseWait(delay, err);
      options.note?.(`${wait.because ?? describeError(err)}; trying again in ${(wait.ms / 1000).toFixed(1)} s`);
      await backoff.wait(wait.ms, options.signal);
    }
  }
}
