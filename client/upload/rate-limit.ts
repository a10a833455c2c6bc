/**
 * `--limit-rate`: one budget for the whole push, so the line stays usable for everything else. A token bucket in
 * debt form: spending more than is there returns how long to wait, so every PATCH body, retry and resume of a push
 * draws on the same rate however they interleave.
 */

/**
 * The lowest --limit-rate: the server closes a request whose body arrives slower than its floor for long enough
 * (connections.minBodyRate, 256 B/s by default, server/slow-bodies.ts). A push paced near that floor would be cut
 * every few minutes, so a rate limit keeps a margin of 4x above the default floor.
 */
export const MIN_LIMIT_RATE = 1024;
export const MIN_LIMIT_RATE_WHY =
  "the server closes an upload whose body arrives slower than its floor (connections.minBodyRate, 256 B/s by default), so a slower one would be cut every few minutes";

/** Piece size of a throttled body: small enough that the rate is smooth on a 1 Mbit/s line. */
export const THROTTLED_PIECE = 16 * 1024;

export class UploadRateLimit {
  #tokens: number;
  #last: number;
  readonly #burst: number;

  constructor(
    readonly bytesPerSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`a rate limit must be above 0 bytes/s, not ${bytesPerSecond}`);
    // A quarter second of credit at most: enough to keep a piece in flight, too little to burst past the limit.
    this.#burst = Math.max(THROTTLED_PIECE, bytesPerSecond / 4);
    this.#tokens = this.#burst;
    this.#last = now();
  }

  /** Spends `n` bytes; returns the milliseconds to wait before sending them (0 when within the budget). */
  reserve(n: number): number {
    const t = this.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((t - this.#last) / 1000) * this.bytesPerSecond);
    this.#last = t;
    this.#tokens -= n;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.bytesPerSecond) * 1000;
  }
}
