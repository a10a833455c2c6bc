/**
 * The server holds a snapshot's whole stream but cannot receive it yet, for its own reasons (issue 16): its disk is
 * full, or a receive failed on an I/O error or the like. Sending again cannot help and is never done: the server
 * receives from its spool by itself. The push stops with this error, a temporary failure (exit 75: run again
 * later), which says so, and why, and what the server needs.
 */
import { SnapferryError } from '../../core/errors.ts';
import type { ReceiveWait, Transfer } from '../../core/protocol.ts';
import { formatBytes } from '../progress/format.ts';
import { formatDuration } from '../progress/math.ts';

export const RECEIVE_WAITING = 'receive_waiting';
/**
 * The server holds the whole stream, but its filesystem is too small for it even empty (ReceiveWait.filesystemBytes):
 * running push again cannot help until the server root has a bigger disk, so not a temporary failure.
 */
export const SERVER_TOO_SMALL = 'server_filesystem_too_small';

/**
 * A push goes on waiting while the server's next try is this close, or while the space it waits for is already
 * there (it tries at its next look), and for this long in all: a blip (a receive that ran out of space just as
 * the space came back, say) ends as received, as it did before receives waited; a disk that stays full ends the
 * push soon with exit 75 instead of holding a timer's run for hours.
 */
export const WAIT_SOON_MS = 30_000;

/** Pure: whether a push that has seen `t` waiting for `waitedMs` keeps polling rather than stop with ReceiveWaiting. */
export function keepWaiting(t: Transfer, nowMs: number, waitedMs: number): boolean {
  if (t.wait === null || waitedMs > 2 * WAIT_SOON_MS || t.wait.filesystemBytes !== undefined) return false;
  const { reason, neededBytes, freeBytes, nextTryAt } = t.wait;
  if (reason === 'disk_full' && neededBytes !== null && freeBytes !== null && freeBytes >= neededBytes) return true;
  return Date.parse(nextTryAt) - nowMs <= WAIT_SOON_MS;
}

export class ReceiveWaiting extends SnapferryError {
  constructor(t: Transfer, nowMs: number = Date.now()) {
    const tooSmall = t.wait?.filesystemBytes !== undefined;
    super(tooSmall ? SERVER_TOO_SMALL : RECEIVE_WAITING, receiveWaitingMessage(t, nowMs), {
      retryable: !tooSmall,
      details: { transferId: t.id, state: t.state, rawBytes: t.rawBytes, ...(t.wait ?? {}) },
    });
  }
}

/** Pure: what a person reads when a push finds its transfer waiting. */
export function receiveWaitingMessage(t: Transfer, nowMs: number): string {
  const head = `${t.snapshot}: the server has the whole stream (${formatBytes(t.rawBytes)}) but has not received it yet`;
  // The server's own words say it all: how big the stream and the filesystem are, and what to do.
  if (t.wait?.filesystemBytes !== undefined && t.error) return `${head}: ${t.error.message}`;
  const wait = t.wait === null ? 'it will try again' : describeWait(t.wait, nowMs);
  // A full disk says it all; any other fault is worth its own words (`status` shows the whole message).
  const last = t.error && t.wait?.reason !== 'disk_full' ? ` (last failure: ${lastWords(t.error.message)})` : '';
  return `${head}: ${wait}${last}; nothing needs sending again, run push later to see it received`;
}

/**
 * Pure: the line of a failure that says most, for one line of output: the last line that is not empty (a failed
 * btrfs command's message is the command, then its stderr, whose last line is its complaint), at most 160 columns.
 */
export function lastWords(message: string): string {
  const line = message.split('\n').map((l) => l.trim()).filter(Boolean).at(-1) ?? message;
  return line.length > 160 ? `${line.slice(0, 159)}…` : line;
}

/** Pure: why a receive waits and what happens next, e.g. "its disk is full (needs 1.2 GiB free, has 80.0 MiB): it receives once space is freed, or tries again in 4m00s". */
export function describeWait(wait: ReceiveWait, nowMs: number): string {
  const next = Date.parse(wait.nextTryAt) - nowMs;
  const when = Number.isFinite(next) && next > 0 ? `in ${formatDuration(next / 1000)}` : 'now';
  const tries = `${wait.tries} ${wait.tries === 1 ? 'try' : 'tries'} so far`;
  if (wait.reason === 'disk_full' && wait.filesystemBytes !== undefined) {
    return `its filesystem is too small for this stream (with its spool it needs more than the ${formatBytes(wait.filesystemBytes)} the ` +
      'filesystem has in all, so freeing space cannot help): give the server root a bigger disk, and it receives by itself once it has the room';
  }
  if (wait.reason === 'disk_full') {
    const need = wait.neededBytes === null ? 'more space' : `about ${formatBytes(wait.neededBytes)} free`;
    const has = wait.freeBytes === null ? '' : `, has ${formatBytes(wait.freeBytes)}`;
    return `its disk is full (it needs ${need}${has}): it receives by itself once space is freed on the server, or tries again ${when} (${tries})`;
  }
  return `its receive failed for the server's own reasons (${tries}); it tries again by itself ${when}`;
}
