/**
 * How many restore streams run at once, per client and in all. Each holds a `btrfs send` (or the archive's reads), a
 * connection, and a frame or two of memory (up to 2 x 16 MiB at the largest chunk size) for as long as its reader takes:
 * without a cap, one token could open a stream on each of its 64 connections, and a server with many clients run out
 * of memory. Beyond the cap: 429 with Retry-After, which the client waits out and retries, as for a verify.
 */
import { ClientCaps, type CapLimits } from './client-caps.ts';

export type RestoreLimits = CapLimits;

/** A restore runs one stream at a time; two leave room for a retry whose old connection the server has not seen go. */
export const DEFAULT_RESTORE_LIMITS: Readonly<RestoreLimits> = Object.freeze({ maxPerClient: 2, maxTotal: 8 });

/** The restore streams' caps: `take(client)` before a stream starts, the function it returns once the body is over. */
export function restoreSlots(limits: Partial<RestoreLimits> = {}): ClientCaps {
  return new ClientCaps({ ...DEFAULT_RESTORE_LIMITS, ...limits }, {
    code: 'too_many_restores', held: 'restore streams from the server', serverHolds: (n) => `sends ${n} restore streams`,
  });
}
