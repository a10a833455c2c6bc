/**
 * What a receive wrote in its folder besides its subvolume. `btrfs receive --chroot` keeps a stream inside the
 * folder it receives into, not inside the new subvolume: with `up -> /` in the subvolume, `up/x` is the folder's x.
 * The policy refuses a path through a symlink (core/wire/sendstream-symlinks.ts), the stream's own and, where the
 * receiver gives its parent's entries, the parent's; this cleanup stays behind it for whatever gets past. What
 * appeared in the folder while the receive ran, it wrote, so that goes when the receive ends, received or failed;
 * what was there before stays, under whatever name. That holds while nothing else writes in the folder during a
 * receive: on the server, one receive runs in a volume's folder at a time (volume_busy). A restore's DEST_DIR is
 * shared with other programs (`snapferry snapshot`, the timer, people), so checkedReceive never sweeps a folder it
 * was told is shared (`folder: 'shared'`).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import * as btrfs from '../btrfs/index.ts';

/**
 * A folder's entries as identities: inode number and birth time. Not the device number: btrfs gives every
 * subvolume (the folder's own too) an anonymous device number at each mount, so after a reboot nothing would match.
 * Every subvolume root is inode 256, but each was born at its own time; a stream can set times, never a birth time.
 */
export type FolderContents = ReadonlySet<string>;

export interface FolderEntry {
  name: string;
  id: string;
}

/** The entries of `dir` with their identities; none when it does not exist. */
export async function folderEntries(dir: string): Promise<FolderEntry[]> {
  const names = await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  const out: FolderEntry[] = [];
  for (const name of names) {
    // lstat: a symlink is itself, never what it names.
    const st = await fs.lstat(path.join(dir, name), { bigint: true }).catch(() => null);
    if (st) out.push({ name, id: `${st.ino}:${st.birthtimeNs}` });
  }
  return out;
}

/** What is in `dir` now, to tell later what a receive added. */
export async function folderContents(dir: string): Promise<FolderContents> {
  return new Set((await folderEntries(dir)).map((e) => e.id));
}

/**
 * The entries a receive added: those not there at `before` (by identity, so a pre-existing entry the stream renamed
 * is not one), but for the names in `keep` (what others wrote meanwhile, which the caller knows and this cannot).
 */
export function addedEntries(now: readonly FolderEntry[], before: FolderContents, keep: readonly string[]): FolderEntry[] {
  return now.filter((e) => !before.has(e.id) && !keep.includes(e.name));
}

/**
 * Deletes every entry of `dir` the receive added (addedEntries), but for the names in `keep`; returns the names
 * deleted. Never follows a symlink.
 */
export async function removeAdded(dir: string, before: FolderContents, keep: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const e of addedEntries(await folderEntries(dir), before, keep)) {
    const p = path.join(dir, e.name);
    if (await btrfs.isSubvolume(p)) await btrfs.deleteSubvolume(p);
    // A plain folder may hold a writable subvolume the stream moved into it: rm empties it, and rmdir of an empty
    // subvolume deletes it (Linux 4.18+).
    else await fs.rm(p, { recursive: true, force: true });
    removed.push(e.name);
  }
  return removed;
}
