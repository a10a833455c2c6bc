/**
 * A token bucket for one direction of the simulated link, shared by every connection through the proxy (a slow
 * link is slow for all its connections together). It refills every TICK_MS and holds at most a few ticks' worth,
 * so traffic goes out in small even slices instead of a burst at the start of each second.
 */
import { ValidationError } from '../../core/errors.ts';

const TICK_MS = 10;
/** Tokens kept across ticks: enough to ride out a late timer, too few to make a visible burst. */
const BURST_TICKS = 3;

export class RateLimiter {
  #rate: number | null = null;
  #tokens = 0;
  #refilledAt = 0;
  #waiters: Array<() => void> = [];
  #timer: NodeJS.Timeout | null = null;
  #round = 0;

  /** Bytes per second, or null for no limit. */
  get rate(): number | null {
    return this.#rate;
  }

  setRate(bytesPerSecond: number | null): void {
    if (bytesPerSecond !== null && !(Number.isFinite(bytesPerSecond) && bytesPerSecond > 0)) {
      throw new ValidationError(`a rate must be a positive number of bytes per second or null, not ${bytesPerSecond}`, {
        details: { bytesPerSecond },
      });
    }
    this.#rate = bytesPerSecond;
    this.#tokens = 0;
    this.#refilledAt = performance.now();
    // Lanes waiting under the old rate may go at once (no limit) or wait for the new one's first slice.
    if (bytesPerSecond === null) this.#wakeAll();
  }

  /**
   * How many of `wanted` bytes may go now; the caller sends exactly that many. Nothing (wait for the next tick) rather
   * than a sliver: tokens refill continuously, so a lane that asks again right after a write would be granted the few
   * bytes of the microseconds between, and spin writing tens of bytes at a time. Thousands of tiny segments a tick
   * kept the proxy's thread so busy that an answer coming the other way waited seconds to be read.
   */
  grant(wanted: number): number {
    if (this.#rate === null) return wanted;
    this.#refill();
    const n = Math.min(wanted, Math.floor(this.#tokens));
    if (n < wanted && n < this.#slice()) return 0;
    this.#tokens -= n;
    return n;
  }

  /** One tick's worth of the rate (at least a byte): the smallest part of a larger want that is granted. */
  #slice(): number {
    return Math.max(1, Math.floor(((this.#rate as number) * TICK_MS) / 1000));
  }

  /** Calls `wake` once, on a later tick, when some tokens are there again. */
  wait(wake: () => void): void {
    this.#waiters.push(wake);
    this.#timer ??= setInterval(() => this.#tick(), TICK_MS);
  }

  /** Drops every waiter and stops the timer: nothing of the limiter keeps the process alive after this. */
  stop(): void {
    this.#waiters = [];
    this.#stopTimer();
  }

  #refill(): void {
    const now = performance.now();
    const rate = this.#rate as number;
    const cap = Math.max(1, (rate * TICK_MS * BURST_TICKS) / 1000);
    this.#tokens = Math.min(cap, this.#tokens + (rate * (now - this.#refilledAt)) / 1000);
    this.#refilledAt = now;
  }

  #tick(): void {
    if (this.#rate !== null) {
      this.#refill();
      if (this.#tokens < 1) return;
    }
    this.#wakeAll();
  }

  #wakeAll(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    if (waiters.length === 0) return this.#stopTimer();
    // Start with a different connection each round so that one busy connection cannot take every slice.
    const start = this.#round++ % waiters.length;
    for (let i = 0; i < waiters.length; i++) (waiters[(start + i) % waiters.length] as () => void)();
    if (this.#waiters.length === 0) this.#stopTimer();
  }

  #stopTimer(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
