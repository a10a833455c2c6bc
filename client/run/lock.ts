/**
 * One `snapferry run` at a time: a timer that fires while a slow push still runs, or an admin running it by hand,
 * must not snapshot, push and prune the same volumes twice at once. The lock is the kernel's (core/file-lock.ts):
 * flock(2) on the lock file, held while the run lasts and released when it ends, however it ends (killed, crashed),
 * so a run that died never leaves a lock behind and no pid is ever guessed alive or dead. The file holds the run's pid
 * and start time, for the message of a run that finds it held.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { SnapferryError } from '../../core/errors.ts';
import { isHeld, tryLock } from '../../core/file-lock.ts';

export class RunLocked extends SnapferryError {}

export { defaultLockFile } from '../defaults.ts';

export interface RunLock {
  file: string;
  release(): Promise<void>;
}

/** Takes the lock or throws RunLocked (code `run_locked`, exit 73) naming the run that holds it. */
export async function acquireRunLock(file: string): Promise<RunLock> {
  const got = await (async () => {
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
    return tryLock(file, 'snapferry run');
  })().catch((err: unknown) => {
    throw unusableLockFile(file, err);
  });
  if (isHeld(got)) return got;
  const who = got.holder === null ? 'another snapferry run (just starting)' : `another snapferry run (pid ${got.holder.pid}, started ${got.holder.startedAt})`;
  throw new RunLocked('run_locked', `${who} holds ${file}; this one stops so the two never overlap`, {
    details: { file, pid: got.holder?.pid ?? null },
  });
}

/**
 * The lock file cannot be made or opened: a folder given as --lock-file, a path under a file, one this user may not
 * write. Each is the user's to fix, and the bare errno ("EISDIR: illegal operation on a directory") named no flag.
 */
function unusableLockFile(file: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  // A recursive mkdir through a file says EEXIST (node 20), an open under one ENOTDIR.
  const why = code === 'EISDIR' ? 'is a folder' : code === 'ENOTDIR' || code === 'EEXIST' ? 'is under a file, not a folder' : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? `cannot be written by this user (${code})` : null;
  if (why === null) return err;
  return new SnapferryError('lock_file_unusable', `the run lock file ${file} (--lock-file) ${why}: give --lock-file the path of a file in a folder this user can write; it is made if missing`, {
    cause: err,
    details: { file },
  });
}
