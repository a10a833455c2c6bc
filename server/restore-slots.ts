/**
 * How many restore streams run at once, per client and in all. Each holds a `btrfs send` (or the archive's reads), a
 * connection, and a frame or two of memory (up to 2 x 16 MiB at the largest chunk size) for as long as its reader takes:
 * without a cap, one token could open a stream on each of its 64 connections, and a server with many clients run out
 * of memory. Beyond the cap: 429 with Retry-After, which the client waits out and retries, as for a verify.
 */
import { SnapferryError } from '../core/errors.ts';

export interface RestoreLimits {
  /** Restore streams one client may have at once. */
  maxPerClient: number;
  /** Restore streams the server runs at once in all. */
  maxTotal: number;
}

/** A restore runs one stream at a time; two leave room for a retry whose old connection the server has not seen go. */
export const DEFAULT_RESTORE_LIMITS: Readonly<RestoreLimits> = Object.freeze({ maxPerClient: 2, maxTotal: 8 });

const RETRY_AFTER_SECONDS = 15;

export class RestoreSlots {
  private readonly limits: RestoreLimits;
  private readonly held = new Map<string, number>();
  private total = 0;

  constructor(limits: Partial<RestoreLimits> = {}) {
    this.limits = { ...DEFAULT_RESTORE_LIMITS, ...limits };
    for (const [name, value] of Object.entries(this.limits)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`restore limit ${name} must be a whole number >= 1, not ${value}`);
    }
  }

  /** Takes a slot for `client`'s stream, or throws too_many_restores (429); the function returned gives it back (once). */
  take(client: string): () => void {
    const ofClient = this.held.get(client) ?? 0;
    if (ofClient >= this.limits.maxPerClient) {
      throw new SnapferryError('too_many_restores', `client ${client} already has ${ofClient} restore streams from the server, the limit is ${this.limits.maxPerClient} (429): let them finish, then try again`, {
        retryable: true, details: { client, maxPerClient: this.limits.maxPerClient, retryAfterSeconds: RETRY_AFTER_SECONDS },
      });
    }
    if (this.total >= this.limits.maxTotal) {
      throw new SnapferryError('too_many_restores', `the server sends ${this.total} restore streams, its limit (429); try again later`, {
        retryable: true, details: { maxTotal: this.limits.maxTotal, retryAfterSeconds: RETRY_AFTER_SECONDS },
      });
    }
    this.held.set(client, ofClient + 1);
    this.total++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.total--;
      const left = (this.held.get(client) ?? 1) - 1;
      if (left > 0) this.held.set(client, left);
      else this.held.delete(client);
    };
  }
}
