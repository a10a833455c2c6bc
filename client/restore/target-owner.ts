/**
 * Who else can write where a restore writes. A restore runs as root and writes by path under DEST_DIR: its spool
 * (`.snapferry-restore-UUID`, named by a UUID the server lists to anyone who holds the token), the staging subvolume,
 * the snapshot. A user who can write DEST_DIR, or rename a folder above it, can put a symlink on one of those paths
 * before or during the run and make root write the downloaded stream into any file (truncating it), or into a folder
 * that user can read. So, as OpenSSH's StrictModes checks a home directory: DEST_DIR and every folder above it, as
 * given and as it resolves, must be owned by root or by this user; DEST_DIR writable by its owner only; a folder above
 * it writable by others only with the sticky bit (/tmp), which keeps them from renaming what is not theirs.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { RestoreTargetError } from './local.ts';

const STICKY = 0o1000;
const GROUP_OR_OTHER_WRITE = 0o022;

export async function assertOnlyWeWrite(destDir: string): Promise<void> {
  const given = path.resolve(destDir);
  const real = await fs.realpath(given);
  const seen = new Set<string>();
  for (const start of [given, real]) {
    for (let dir = start; !seen.has(dir); dir = path.dirname(dir)) {
      seen.add(dir);
      // stat follows a symlink on the way: the link itself is as safe as the folder it is in, checked next.
      const why = unsafeBecause(await fs.stat(dir), dir === given || dir === real);
      if (why !== null) throw refusal(given, dir, why);
    }
  }
}

/**
 * Why a folder lets a user other than root or this one put a symlink where the restore writes, or null when it does
 * not. `isTarget`: the restore writes in this folder itself (DEST_DIR, the spool), where the sticky bit is no help,
 * since anyone who may write there may create a name of their own in it; a folder above only needs to keep its
 * entries from being renamed. The one rule for DEST_DIR and the spool (spool.ts), so that both say the same.
 */
export function unsafeBecause(stat: { uid: number; gid: number; mode: number }, isTarget: boolean): string | null {
  const me = process.geteuid?.() ?? 0;
  if (stat.uid !== 0 && stat.uid !== me) return `is owned by uid ${stat.uid}, who can put a symlink in it`;
  const othersWrite = stat.mode & GROUP_OR_OTHER_WRITE;
  if (othersWrite === 0) return null;
  const who = othersWrite & 0o002 ? 'every user' : `group ${stat.gid}`;
  if (isTarget) return `is writable by ${who}, who can put a symlink where the restore writes`;
  return (stat.mode & STICKY) !== 0 ? null : `is writable by ${who} without the sticky bit, so it can be renamed and replaced by a symlink`;
}

function refusal(destDir: string, dir: string, why: string): RestoreTargetError {
  const where = dir === destDir ? `DEST_DIR ${destDir}` : `DEST_DIR ${destDir}: ${dir}, a folder on its way,`;
  const fix = dir === destDir ? `chown root and chmod go-w ${dir}, or restore` : 'restore';
  return new RestoreTargetError(
    'restore_target_unsafe',
    `${where} ${why}; the restore runs as root and would write the download through it: ${fix} into a folder whose path only root can change`,
    { details: { dir, destDir } },
  );
}
