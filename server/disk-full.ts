/**
 * A full disk on the server is a pause, not a failure: nothing acknowledged is lost (a frame reaches the index only
 * once written, and a cut-back spool is repaired from the index), and the upload goes on once space is freed. This
 * turns the ENOSPC/EDQUOT that any write may raise into one typed, retryable error, answered 507.
 */
import { SnapferryError } from '../core/errors.ts';

export class DiskFullError extends SnapferryError {
  constructor(cause: unknown, details: Record<string, unknown> = {}) {
    super(
      'disk_full',
      'the server is out of disk space (507 Insufficient Storage); nothing already acknowledged is lost: free space on the server (delete old snapshots or files), and the upload goes on from where it stopped',
      { retryable: true, cause, details },
    );
  }
}

const FULL_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT']);

/** Whether `err`, or anything in its cause chain, is the operating system saying the disk is full. */
export function isDiskFull(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e !== null && typeof e === 'object' && depth < 6; depth++) {
    if (e instanceof DiskFullError) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && FULL_CODES.has(code)) return true;
    // btrfs receive reports it in its stderr, which its error message carries.
    if (e instanceof Error && /No space left on device/.test(e.message)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** `err` as a DiskFullError when the disk is full, else unchanged. */
export function asDiskFull(err: unknown, details?: Record<string, unknown>): unknown {
  if (err instanceof DiskFullError || !isDiskFull(err)) return err;
  return new DiskFullError(err, details);
}
