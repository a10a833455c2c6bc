/** The server root must be a directory on btrfs: `btrfs receive` can write nowhere else. Say so before listening. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { SnapferryError } from '../core/errors.ts';

const BTRFS_SUPER_MAGIC = 0x9123683e;

export async function checkServerRoot(root: string): Promise<void> {
  // The filesystem is judged where the root is or would be, before anything is made: a refused root left an empty
  // folder behind, and one whose btrfs is not mounted yet would have been made on the filesystem below the mount.
  const stats = await fs.statfs(await nearestExisting(root));
  if (stats.type !== BTRFS_SUPER_MAGIC) {
    throw new SnapferryError(
      'root_not_btrfs',
      `the server root ${root} is not on a btrfs filesystem; give --root a folder on btrfs (received snapshots are subvolumes)`,
    );
  }
  await fs.mkdir(root, { recursive: true, mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    throw new SnapferryError('root_unusable', `cannot create the server root ${root}: ${err.message}`);
  });
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
