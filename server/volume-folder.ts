/**
 * What a receive wrote in its volume's folder besides its subvolume. `btrfs receive --chroot` runs in the volume's
 * folder (ROOT/volumes/CLIENT/VOLUME), and must: clone sources are opened from outside the chroot, so only a chroot
 * that holds them (this folder) keeps a symlink in a clone source's path from leading to another client's files
 * (server/replication.ts receivePolicy). But a stream can write through its own symlinks anywhere the chroot reaches:
 * with `up -> /` in the new subvolume, `up/x` is this folder's x. One receive runs in a volume at a time
 * (volume_busy), so what appeared in the folder while it ran, it wrote: that goes when the receive ends, received or
 * failed. What was there before stays, under whatever name (an admin's subvolume where the snapshot should go, say).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import * as btrfs from '../core/btrfs/index.ts';

/** The folder's entries as identities (device and inode: every subvolume root is inode 256, on a device of its own). */
export type FolderSnapshot = ReadonlySet<string>;

async function entries(dir: string): Promise<{ name: string; id: string }[]> {
  const names = await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  const out: { name: string; id: string }[] = [];
  for (const name of names) {
    // lstat: a symlink is itself, never what it names.
    const st = await fs.lstat(path.join(dir, name)).catch(() => null);
    if (st) out.push({ name, id: `${st.dev}:${st.ino}` });
  }
  return out;
}

/** What is in `dir` now, to tell later what a receive added. */
export async function folderContents(dir: string): Promise<FolderSnapshot> {
  return new Set((await entries(dir)).map((e) => e.id));
}

/**
 * Deletes every entry of `dir` that was not there at `before` (by identity, so a pre-existing entry the stream
 * renamed stays too), but for the names in `keep`; returns the names deleted. Never follows a symlink.
 */
export async function removeAdded(dir: string, before: FolderSnapshot, keep: readonly string[] = []): Promise<string[]> {
  const removed: string[] = [];
  for (const e of await entries(dir)) {
    if (before.has(e.id) || keep.includes(e.name)) continue;
    const p = path.join(dir, e.name);
    if (await btrfs.isSubvolume(p)) await btrfs.deleteSubvolume(p);
    // A plain folder may hold a writable subvolume the stream moved into it: rm empties it, and rmdir of an empty
    // subvolume deletes it (Linux 4.18+).
    else await fs.rm(p, { recursive: true, force: true });
    removed.push(e.name);
  }
  return removed;
}
