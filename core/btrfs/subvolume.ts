/** Subvolume queries and changes: show, list, snapshot, create, delete, the read-only property. */
import { statfs, lstat } from 'node:fs/promises';
import path from 'node:path';
import { findMount } from './mounts.ts';
import { parseReadonlyProperty, parseSubvolumeList, parseSubvolumeShow } from './parse.ts';
import type { SubvolumeInfo, SubvolumeListEntry } from './parse.ts';
import { runBtrfs } from './run.ts';
import type { RunOptions } from './run.ts';

/** statfs(2) f_type of btrfs (linux/magic.h BTRFS_SUPER_MAGIC). */
const BTRFS_SUPER_MAGIC = 0x9123683e;
/** The root directory of every btrfs subvolume has inode number 256 (BTRFS_FIRST_FREE_OBJECTID). */
const SUBVOLUME_ROOT_INODE = 256;

export async function subvolumeShow(subvolume: string, options: RunOptions = {}): Promise<SubvolumeInfo> {
  return parseSubvolumeShow(await runBtrfs(['subvolume', 'show', '--', subvolume], options));
}

export interface ListedSubvolume extends SubvolumeListEntry {
  /** Where the subvolume is in our directory tree; null when the filesystem is mounted with subvol=, not its top. */
  absolutePath: string | null;
}

export interface ListOptions extends RunOptions {
  /** Only read-only subvolumes (`-r`). */
  readonlyOnly?: boolean;
}

/**
 * Every subvolume of the filesystem that holds `fsPath` (`btrfs subvolume list -u -q -R [-r]`), with its UUID,
 * parent UUID and received UUID. Callers pick theirs by `absolutePath` (e.g. those under a volume's directory).
 */
export async function subvolumeList(fsPath: string, options: ListOptions = {}): Promise<ListedSubvolume[]> {
  const args = ['subvolume', 'list', '-u', '-q', '-R'];
  if (options.readonlyOnly === true) args.push('-r');
  const [text, mount] = await Promise.all([runBtrfs([...args, '--', fsPath], options), findMount(fsPath)]);
  const topMounted = mount !== null && mount.fsType === 'btrfs' && mount.root === '/';
  return parseSubvolumeList(text).map((entry) => ({
    ...entry,
    absolutePath: topMounted ? path.join(mount.mountPoint, entry.path) : null,
  }));
}

/** True when `p` is the root of a btrfs subvolume (or snapshot); false when it is anything else or missing. */
export async function isSubvolume(p: string): Promise<boolean> {
  try {
    const [stats, fsStats] = await Promise.all([lstat(p), statfs(p)]);
    return stats.isDirectory() && stats.ino === SUBVOLUME_ROOT_INODE && fsStats.type === BTRFS_SUPER_MAGIC;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw err;
  }
}

export interface SnapshotOptions extends RunOptions {
  readonly?: boolean;
}

/** `btrfs subvolume snapshot [-r] source destination`; destination must not exist yet. */
export async function snapshot(source: string, destination: string, options: SnapshotOptions = {}): Promise<void> {
  const args = ['subvolume', 'snapshot'];
  if (options.readonly === true) args.push('-r');
  await runBtrfs([...args, '--', source, destination], options);
}

export async function createSubvolume(p: string, options: RunOptions = {}): Promise<void> {
  await runBtrfs(['subvolume', 'create', '--', p], options);
}

export interface DeleteOptions extends RunOptions {
  /**
   * Wait for the transaction that deletes it to commit (`--commit-after`), so the deletion survives a crash; a
   * server that deletes a failed receive and then receives again relies on that. Default true.
   */
  commit?: boolean;
}

/** Deletes a subvolume, read-only or not. Its space is freed later, in the background, by the kernel. */
export async function deleteSubvolume(p: string, options: DeleteOptions = {}): Promise<void> {
  const args = ['subvolume', 'delete'];
  if (options.commit ?? true) args.push('--commit-after');
  await runBtrfs([...args, '--', p], options);
}

export async function getReadonly(subvolume: string, options: RunOptions = {}): Promise<boolean> {
  return parseReadonlyProperty(await runBtrfs(['property', 'get', '-ts', '--', subvolume, 'ro'], options));
}

/**
 * The read-only subvolume (a snapshot, most often) that holds `p`, or null when the one holding it is writable. The
 * subvolume holding a path is the nearest folder at or above it that is a subvolume's root; a path not made yet is
 * judged by the folders above it, where it would be made. A filesystem mounted read-only is not this: its
 * subvolumes' own `ro` property stays false.
 */
export async function readOnlySubvolumeHolding(p: string, options: RunOptions = {}): Promise<string | null> {
  for (let at = path.resolve(p); ; at = path.dirname(at)) {
    if (await isSubvolume(at)) return (await getReadonly(at, options)) ? at : null;
    if (at === path.dirname(at)) return null;
  }
}

export interface SetReadonlyOptions extends RunOptions {
  /**
   * Needed to make a received subvolume writable (`-f`): btrfs then clears its Received UUID, so it can no longer
   * be the parent of an incremental receive.
   */
  force?: boolean;
}

export async function setReadonly(
  subvolume: string,
  readonly: boolean,
  options: SetReadonlyOptions = {},
): Promise<void> {
  const args = ['property', 'set', '-ts'];
  if (options.force === true) args.push('-f');
  await runBtrfs([...args, '--', subvolume, 'ro', String(readonly)], options);
}
