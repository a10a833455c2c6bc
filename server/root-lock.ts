/**
 * One server per root (issue 18): `serve` holds ROOT/serve.lock for its whole life, and every command that changes
 * the root (`prune-server`) takes it for as long as it works. A second one refuses, naming the holder. Without it, a
 * second `serve` on the same root took the first one's running receive for "a partial receive left by a crash",
 * deleted it, and the push that fed it still reported success over a truncated copy.
 *
 * The lock is the kernel's (core/file-lock.ts): released when its holder dies, whatever the death, so a server that
 * crashed or was killed with SIGKILL never keeps the next one from starting.
 */
import fs from 'node:fs/promises';
import { SnapferryError } from '../core/errors.ts';
import { describeHolder, isHeld, tryLock, type HeldLock } from '../core/file-lock.ts';
import { ServerLayout } from './layout.ts';
import { whyReadOnly } from './root-check.ts';

export const ROOT_LOCKED = 'root_locked';

function noRoot(layout: ServerLayout): SnapferryError {
  return new SnapferryError('root_unusable', `there is no server root at ${layout.root}: give --root the folder \`snapferry serve\` uses`, { details: { root: layout.root } });
}

/** Throws `root_unusable` when there is no folder at `root` (a command that only reads the root, as --dry-run does). */
export async function assertRootExists(root: string): Promise<void> {
  const layout = new ServerLayout(root);
  const isDir = await fs.stat(layout.root).then((st) => st.isDirectory(), () => false);
  if (!isDir) throw noRoot(layout);
}

/** Takes the root's lock for `command`, or throws `root_locked` (exit 1) naming the process that holds it. */
export async function lockRoot(root: string, command: string): Promise<HeldLock> {
  const layout = new ServerLayout(root);
  const got = await tryLock(layout.lockFile, command).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw noRoot(layout);
    if (err.code === 'EROFS') throw await whyReadOnly(layout.root);
    throw err;
  });
  if (isHeld(got)) return got;
  const holder = got.holder;
  throw new SnapferryError(
    ROOT_LOCKED,
    `the server root ${layout.root} is in use by ${describeHolder(holder)}; one process at a time may change a root: ` +
      'wait for that one to end or stop it, or give another --root',
    { details: { root: layout.root, lockFile: layout.lockFile, pid: holder?.pid ?? null, startedAt: holder?.startedAt ?? null, command: holder?.command ?? null } },
  );
}
