/**
 * One restore at a time into a DEST_DIR. A receive deletes what appeared in its folder while it ran
 * (core/receive/added-entries.ts), so a second restore into the same folder, its spool or its own receive, would
 * be deleted by the first, and would delete the first's. The lock is the kernel's (core/file-lock.ts): flock(2) on
 * DEST_DIR itself, so nothing is left in the user's folder, held from before the spool is opened until the snapshot
 * has its name, and released however the restore ends (a killed one too); the second restore stops at once.
 */
import { SnapferryError } from '../../core/errors.ts';
import { isHeld, tryLockFolder, type HeldLock } from '../../core/file-lock.ts';

export class DestBusy extends SnapferryError {}

/** Takes DEST_DIR's lock or throws DestBusy (code `dest_busy`, exit 73). */
export async function lockDestDir(destDir: string): Promise<HeldLock> {
  const got = await tryLockFolder(destDir);
  if (isHeld(got)) return got;
  throw new DestBusy('dest_busy', `another restore is receiving into ${destDir} (it holds the folder's lock); wait for it to finish, or restore into another folder`, {
    retryable: true,
    details: { destDir },
  });
}
