/**
 * A full disk on the server is a pause, not a failure: nothing acknowledged is lost (a frame reaches the index only
 * once written, and a cut-back spool is repaired from the index), and the upload goes on once space is freed. This
 * turns the ENOSPC/EDQUOT that any write may raise into one typed, retryable error, answered 507.
 */
import { SnapferryError } from '../core/errors.ts';
import { isDiskFull as isFull } from '../core/disk-full.ts';

export class DiskFullError extends SnapferryError {
  constructor(cause: unknown, details: Record<string, unknown> = {}) {
    super(
      'disk_full',
      'the server is out of disk space (507 Insufficient Storage); nothing already acknowledged is lost: free space on the server (delete old snapshots or files), and the upload goes on from where it stopped',
      { retryable: true, cause, details },
    );
  }
}

/**
 * A full disk that no freeing can cure: the stream is more than the server's filesystem holds empty (a whole stream's
 * receive, server/receive-wait.ts; an upload partway, server/upload-room.ts). Final, and said with both sizes.
 */
export const FILESYSTEM_TOO_SMALL = 'filesystem_too_small';

/** Whether `err`, or anything in its cause chain, is the operating system saying the disk is full. */
export function isDiskFull(err: unknown): boolean {
  return isFull(err, (e) => e instanceof DiskFullError);
}

/**
 * `err` as a DiskFullError when the disk is full, else unchanged; a full disk already judged too small for its stream
 * (its cause the DiskFullError) stays that, the exacter word.
 */
export function asDiskFull(err: unknown, details?: Record<string, unknown>): unknown {
  if (err instanceof DiskFullError || !isDiskFull(err)) return err;
  if (err instanceof SnapferryError && err.code === FILESYSTEM_TOO_SMALL) return err;
  return new DiskFullError(err, details);
}
