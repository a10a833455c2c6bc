/**
 * What a failed receive means, and when to try again (issue 16), as pure functions: no clock, disk or catalog of
 * their own. A stream that arrived whole is never thrown away for the server's own trouble: a full disk, an I/O
 * error or a crash makes its transfer wait, with its spool, until the server can receive it; only a stream the
 * server refuses (or a snapshot that cannot take its name) fails it. The core (server/replication.ts) applies
 * these decisions.
 */
import { SnapferryError } from '../core/errors.ts';
import type { ReceiveWait, TransferState } from '../core/protocol.ts';
import { FILESYSTEM_TOO_SMALL, isDiskFull } from './disk-full.ts';
import type { FilesystemSize } from './filesystem-size.ts';

/** What went wrong with a receive: the server's disk, the server otherwise, or the stream (or the snapshot). */
export type ReceiveFault = ReceiveWait['reason'] | 'refused';

/** How soon, and how often, a waiting receive is tried again. */
export interface RetrySchedule {
  /** The wait after the first failure; each further failure waits 4x longer, up to maxMs. */
  firstMs: number;
  maxMs: number;
  /** How often the server looks at the waiting transfers (their timers, and the free space they need). */
  checkMs: number;
}

/**
 * A few minutes at most between tries: a full disk is usually freed by a person, who expects to see it go soon.
 * A look costs one statfs, and only while something waits.
 */
export const DEFAULT_RETRY: RetrySchedule = { firstMs: 5000, maxMs: 5 * 60_000, checkMs: 5000 };

/**
 * btrfs receive's complaints that no retry can cure: the stream names a parent or a clone source this filesystem
 * does not have (an admin deleted it after the upload began). A new transfer, planned afresh, can.
 */
const STREAM_CANNOT_APPLY = /cannot find parent subvolume|clone: did not find source subvol|parent subvol .* not found/i;

/** Which kind of failure `err` is (a spool damaged on disk is dealt with before: it is rewound, not waited for). */
export function classifyReceiveFailure(err: SnapferryError): ReceiveFault {
  if (isDiskFull(err)) return 'disk_full';
  // Refused by the validator, a frame that failed to verify, a stream that is not the snapshot it claims to be, or
  // one that names a path its own snapshot does not have (sendstream_cannot_apply, core/btrfs/receive-failure.ts).
  if (err.code.startsWith('sendstream_') || err.code.startsWith('frame_') || err.code.startsWith('stream_')) return 'refused';
  // Something else holds the name or the UUID, or btrfs made something other than what was sent: a person decides.
  if (['snapshot_exists', 'snapshot_uuid_taken', 'receive_unchecked'].includes(err.code)) return 'refused';
  if (STREAM_CANNOT_APPLY.test(err.message)) return 'refused';
  return 'server_fault';
}

/** The state a whole stream waits in after a failure of this kind. */
export function waitingState(reason: ReceiveWait['reason']): TransferState {
  return reason === 'disk_full' ? 'waiting_for_space' : 'waiting_to_retry';
}

/** How long to wait after the `tries`-th failure in a row: firstMs, 4x, 16x, ... capped at maxMs. */
export function retryDelayMs(tries: number, schedule: RetrySchedule): number {
  return Math.min(schedule.maxMs, schedule.firstMs * 4 ** Math.max(0, Math.min(tries - 1, 20)));
}

export interface FailedReceive {
  reason: ReceiveWait['reason'];
  /** The wait the transfer had before this failure (a retry that failed again), or null for a first failure. */
  before: ReceiveWait | null;
  /** Raw bytes of the whole stream: about what btrfs receive writes, so the space it needs. */
  rawBytes: number;
  /** Free space when the receive that failed started, when known. */
  freeAtStart: number | null;
  /** Free space now, after the partial subvolume was deleted; null when it cannot be read. */
  freeBytes: number | null;
  nowMs: number;
}

/** The wait that follows a failed receive of a whole stream. */
export function waitAfter(f: FailedReceive, schedule: RetrySchedule): ReceiveWait {
  const tries = (f.before?.tries ?? 0) + 1;
  return {
    reason: f.reason,
    since: f.before?.since ?? new Date(f.nowMs).toISOString(),
    tries,
    nextTryAt: new Date(f.nowMs + retryDelayMs(tries, schedule)).toISOString(),
    neededBytes: f.reason === 'disk_full' ? neededAfter(f) : null,
    freeBytes: f.freeBytes,
  };
}

/**
 * The free space a full disk's receive needs: the raw stream's size at first. A receive that ran out of space with
 * more than that free shows the estimate was low (metadata, no compression where the client had some): the need
 * grows past what was free then, by a quarter, so that freed space alone does not start the same failure again and
 * again; the timer still tries.
 */
function neededAfter(f: FailedReceive): number {
  const before = f.before?.reason === 'disk_full' ? (f.before.neededBytes ?? 0) : 0;
  const fellShort = f.freeAtStart === null ? 0 : Math.ceil(f.freeAtStart * 1.25);
  return Math.max(f.rawBytes, before, fellShort);
}

/**
 * Why a waiting receive should run now, or null to wait on. A full disk runs as soon as the free space reaches what
 * it needs; and every wait runs when its time comes, because btrfs's free space is an estimate (compression,
 * metadata, a subvolume deletion the cleaner has not finished) and an I/O error may have healed.
 */
export function retryDue(wait: ReceiveWait, nowMs: number, freeBytes: number | null): string | null {
  if (wait.reason === 'disk_full' && wait.neededBytes !== null && freeBytes !== null && freeBytes >= wait.neededBytes) {
    return `${freeBytes} bytes are free, of the ${wait.neededBytes} the receive needs`;
  }
  // Too small for it: a try only fills the disk again, for everyone, and fails. Grown, it has the free space.
  if (wait.filesystemBytes !== undefined) return null;
  if (nowMs >= Date.parse(wait.nextTryAt)) return `try ${wait.tries + 1}, as scheduled`;
  return null;
}

export { FILESYSTEM_TOO_SMALL };

/**
 * Whether a whole stream whose receive found the disk full can never be received on this filesystem, however much
 * is freed: its spool (kept until the snapshot is received) and the room its receive needs (wait.neededBytes, at
 * least the raw stream) are more than the filesystem's whole size. Only that is certain: the usable room of a btrfs
 * is less than its size (metadata, DUP), so a stream just under it may not fit either, and goes on waiting. Undecided
 * (false) where the mount compresses, since a received snapshot may then take far less than its raw stream.
 */
export function tooSmallFor(wait: ReceiveWait, spoolBytes: number, disk: FilesystemSize | null): boolean {
  if (wait.reason !== 'disk_full' || wait.neededBytes === null || disk === null || disk.compresses) return false;
  return spoolBytes + wait.neededBytes > disk.totalBytes;
}

/** The error a whole stream too big for the server's filesystem waits with (tooSmallFor), `cause` the receive's. */
export function filesystemTooSmall(root: string, wait: ReceiveWait, spoolBytes: number, totalBytes: number, cause: SnapferryError): SnapferryError {
  const need = spoolBytes + (wait.neededBytes ?? 0);
  return new SnapferryError(
    FILESYSTEM_TOO_SMALL,
    `the server's filesystem is too small for this stream: it needs about ${mib(need)} (its spool, ${mib(spoolBytes)}, ` +
      `kept until it is received, and about ${mib(wait.neededBytes ?? 0)} for the snapshot), and the filesystem of ${root} ` +
      `is ${mib(totalBytes)} in all, so no space freed there can make room. Give the server root a bigger disk (grow its ` +
      'btrfs: `btrfs device add`, or `btrfs filesystem resize max` on a larger device): the server then receives the ' +
      'stream from its spool by itself, and nothing is sent again. (The receive said: ' +
      `${cause.message.split('\n').filter(Boolean).at(-1) ?? cause.code})`,
    { cause, retryable: false, details: { spoolBytes, neededBytes: wait.neededBytes, filesystemBytes: totalBytes } },
  );
}

function mib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
