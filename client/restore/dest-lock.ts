/**
 * One restore at a time into a DEST_DIR. A receive deletes what appeared in its folder while it ran
 * (core/receive/added-entries.ts), so a second restore into the same folder, its spool or its own receive, would
 * be deleted by the first, and would delete the first's. The lock is the kernel's (core/file-lock.ts): flock(2) on
 * a file in DEST_DIR, held from before the spool is opened until the snapshot has its name, released however the
 * restore ends; the second restore stops at once and says who holds it.
 */
import path from 'node:path';
import { SnapferryError } from '../../core/errors.ts';
import { describeHolder, isHeld, tryLock, type HeldLock } from '../../core/file-lock.ts';

export class DestBusy extends SnapferryError {}

/** The lock file's name in DEST_DIR: a dot name of snapferry's own, which no snapshot takes. */
export const DEST_LOCK_NAME = '.snapferry-restore.lock';

/** Takes DEST_DIR's lock or throws DestBusy (code `dest_busy`, exit 73) naming the restore that holds it. */
export async function lockDestDir(destDir: string): Promise<HeldLock> {
  const file = path.join(destDir, DEST_LOCK_NAME);
  const got = await tryLock(file, 'snapferry restore');
  if (isHeld(got)) return got;
  throw new DestBusy('dest_busy', `${describeHolder(got.holder)} is restoring into ${destDir}; wait for it to finish, or restore into another folder`, {
    retryable: true,
    details: { destDir, file, pid: got.holder?.pid ?? null },
  });
}
