/**
 * A volume's folder (ROOT/volumes/CLIENT/VOLUME) holds received snapshots, read-only subvolumes, and nothing else.
 * It is also where `btrfs receive --chroot` runs, and must be: clone sources are opened from outside the chroot, so
 * only a chroot that holds them (this folder) keeps a symlink in a clone source's path from leading to another
 * client's files (server/replication.ts receivePolicy). A stream may write through its own symlinks anywhere the
 * chroot reaches: a symlink `up -> /` in the new subvolume and `up/x` is this folder's x. One receive runs in a
 * volume at a time (volume_busy), so whatever else is in the folder when it ends, it wrote, and it goes, received or
 * failed: every entry that is not a subvolume, and every subvolume that is not read-only (a received snapshot is
 * read-only from the moment btrfs receive finishes it; a writable one is a partial receive, under any name the
 * stream renamed it to).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import * as btrfs from '../core/btrfs/index.ts';

/** Deletes what is in `dir` besides received snapshots; returns the names deleted. Never follows a symlink. */
export async function clearVolumeFolder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  const removed: string[] = [];
  for (const e of entries) {
    const p = path.join(dir, e.name);
    // Dirent types come from the directory itself (lstat semantics): a symlink is a symlink, and is unlinked.
    if (e.isDirectory() && (await btrfs.isSubvolume(p))) {
      if (await isReadOnly(p)) continue;
      await btrfs.deleteSubvolume(p);
    } else {
      // A plain folder may hold a writable subvolume the stream moved into it: rm empties it, and rmdir of an empty
      // subvolume deletes it (Linux 4.18+).
      await fs.rm(p, { recursive: true, force: true });
    }
    removed.push(e.name);
  }
  return removed;
}

/**
 * access(2) asks the filesystem: btrfs answers EROFS to a write check on a read-only subvolume, whoever asks (root
 * included). One syscall per snapshot, where `btrfs property get` would be one process.
 */
async function isReadOnly(subvolume: string): Promise<boolean> {
  return fs.access(subvolume, fs.constants.W_OK).then(
    () => false,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'EROFS') return true;
      throw err;
    },
  );
}
