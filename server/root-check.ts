/** The server root must be a directory on btrfs: `btrfs receive` can write nowhere else. Say so before listening. */
import fs from 'node:fs/promises';
import { SnapferryError } from '../core/errors.ts';

const BTRFS_SUPER_MAGIC = 0x9123683e;

export async function checkServerRoot(root: string): Promise<void> {
  await fs.mkdir(root, { recursive: true, mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    throw new SnapferryError('root_unusable', `cannot create the server root ${root}: ${err.message}`);
  });
  const stats = await fs.statfs(root);
  if (stats.type !== BTRFS_SUPER_MAGIC) {
    throw new SnapferryError(
      'root_not_btrfs',
      `the server root ${root} is not on a btrfs filesystem; give --root a folder on btrfs (received snapshots are subvolumes)`,
    );
  }
}
