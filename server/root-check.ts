/** The server root must be a directory on btrfs: `btrfs receive` can write nowhere else. Say so before listening. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { readOnlySubvolumeHolding } from '../core/btrfs/index.ts';
import { SnapferryError } from '../core/errors.ts';

const BTRFS_SUPER_MAGIC = 0x9123683e;

export async function checkServerRoot(root: string): Promise<void> {
  // The filesystem is judged where the root is or would be, before anything is made: a refused root left an empty
  // folder behind, and one whose btrfs is not mounted yet would have been made on the filesystem below the mount.
  const existing = await nearestExisting(root);
  const stats = await fs.statfs(existing);
  if (stats.type !== BTRFS_SUPER_MAGIC) {
    throw new SnapferryError(
      'root_not_btrfs',
      `the server root ${root} is not on a btrfs filesystem; give --root a folder on btrfs (received snapshots are subvolumes)`,
    );
  }
  await fs.mkdir(root, { recursive: true, mode: 0o700 }).catch(async (err: NodeJS.ErrnoException) => {
    // A recursive mkdir on a read-only filesystem says ENOENT (node 20), not EROFS: access(2) tells.
    if (err.code === 'EROFS' || (await isReadOnly(existing))) throw await whyReadOnly(root);
    throw new SnapferryError('root_unusable', `cannot create the server root ${root}: ${err.message}`);
  });
}

async function isReadOnly(p: string): Promise<boolean> {
  return fs.access(p, fs.constants.W_OK).then(
    () => false,
    (err: NodeJS.ErrnoException) => err.code === 'EROFS',
  );
}

/** `p`, or the nearest folder above it that exists. */
async function nearestExisting(p: string): Promise<string> {
  for (let at = path.resolve(p); ; at = path.dirname(at)) {
    try {
      await fs.stat(at);
      return at;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || at === path.dirname(at)) throw new SnapferryError('root_unusable', `cannot use the server root ${p}: ${(err as Error).message}`);
    }
  }
}

/**
 * Whether this process runs as a systemd service: systemd sets INVOCATION_ID in every service's environment
 * (systemd.exec(5), "Environment variables in spawned processes"), and a shell an operator types `snapferry serve`
 * into has none. Where it is unset, a message about snapferry-server.service's ReadWritePaths= sends the operator to
 * a unit that is not running this server.
 */
export function runsUnderSystemd(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.INVOCATION_ID ?? '') !== '';
}

/**
 * EROFS on the root. Under snapferry-server.service, most often its ProtectSystem=strict, which leaves writable only
 * the ReadWritePaths= it lists (/srv/snapferry): a bare "EROFS: read-only file system, open '.../serve.lock'" named
 * neither. Run by hand, only the filesystem's own mount can be read-only, and the unit is no part of it.
 */
export function readOnlyRoot(root: string, underSystemd: boolean = runsUnderSystemd()): SnapferryError {
  const at = path.resolve(root);
  const message = underSystemd
    ? `the server root ${at} is read-only for this process. Under snapferry-server.service, which may write only to ` +
      `the ReadWritePaths= it lists, add it with \`systemctl edit snapferry-server\`:\n  [Service]\n  ReadWritePaths=${at}\n` +
      'then `systemctl restart snapferry-server`. Otherwise its filesystem is mounted read-only: remount it read-write, or give --root another folder'
    : `the server root ${at} is read-only for this process: its filesystem is mounted read-only (\`findmnt -T ${at}\` shows ` +
      'the mount and its options). Remount it read-write (`mount -o remount,rw MOUNTPOINT`), or give --root a folder on a btrfs mounted read-write';
  return new SnapferryError('root_read_only', message, { details: { root: at, underSystemd } });
}

/**
 * The root could not be written (EROFS): why. A read-only subvolume (a snapshot given as --root, or a folder in one)
 * refuses every write whatever the mount and the unit, so neither ReadWritePaths= nor a remount would help: it is
 * looked for first, through btrfs's own `ro` property. Else, as readOnlyRoot says, the mount or the unit.
 */
export async function whyReadOnly(root: string): Promise<SnapferryError> {
  // The query only picks the message: one that fails (no btrfs command) leaves the mount's, not a second error.
  const subvolume = await readOnlySubvolumeHolding(root).catch(() => null);
  return subvolume === null ? readOnlyRoot(root) : readOnlySubvolumeRoot(root, subvolume);
}

/** The root is, or is in, a read-only subvolume: the same code (exit 2), the cause and the two ways out. */
export function readOnlySubvolumeRoot(root: string, subvolume: string): SnapferryError {
  const at = path.resolve(root);
  const what = at === subvolume ? 'is a read-only btrfs subvolume (a read-only snapshot)' : `is in ${subvolume}, a read-only btrfs subvolume (a read-only snapshot)`;
  return new SnapferryError(
    'root_read_only',
    `the server root ${at} ${what}, where nothing can be written, whatever the mount. The root must be a writable ` +
      'subvolume or folder: make one (`btrfs subvolume create DIR`) and give --root DIR, or, if this snapshot is ' +
      `meant to become the root, make it writable: \`btrfs property set -ts ${subvolume} ro false\``,
    { details: { root: at, readOnlySubvolume: subvolume } },
  );
}
