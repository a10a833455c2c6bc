/**
 * What a restore finds on the restoring machine: the read-only snapshots in a folder (the possible parents, or the
 * snapshot itself, already there) and whether a folder is on btrfs at all. A snapshot's identity is the UUID that
 * `btrfs send` puts in its stream and the server's catalog lists: its Received UUID if it was itself received (a
 * restored snapshot), its own UUID otherwise (the original a push once sent).
 */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as btrfs from '../../core/btrfs/index.ts';
import { findMount, type MountEntry } from '../../core/btrfs/mounts.ts';
import { SnapferryError } from '../../core/errors.ts';

export interface LocalSubvolume {
  name: string;
  path: string;
  /** Received UUID, or UUID when it has none. */
  identity: string;
  /** Its own UUID on this filesystem. */
  uuid: string;
  /** A received copy (an earlier restore), not the original a push sent: its ctransid is its own, not comparable. */
  received: boolean;
}

export class RestoreTargetError extends SnapferryError {}

/** Read-only subvolumes directly inside `dir`, by name; dot names (our staging and spool folders) are not looked at. */
export async function readonlySnapshotsIn(dir: string): Promise<LocalSubvolume[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const found: LocalSubvolume[] = [];
  for (const e of entries.filter((x) => x.isDirectory() && !x.name.startsWith('.')).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (!(await btrfs.isSubvolume(p)) || !(await btrfs.getReadonly(p))) continue;
    const info = await btrfs.subvolumeShow(p);
    found.push({ name: e.name, path: p, identity: info.receivedUuid ?? info.uuid, uuid: info.uuid, received: info.receivedUuid !== null });
  }
  return found;
}

/**
 * Other subvolumes of the filesystem that `btrfs receive` could build an incremental on instead of `parent`. btrfs
 * receive takes no parent path: it looks the stream's parent UUID up in the whole filesystem, first as a Received
 * UUID, then as a UUID, and takes the first it finds (checked with btrfs-progs 6.2: an original named as the parent
 * lost to an earlier restore's copy of it in another folder). The parent named is the one used only when no other
 * subvolume answers to its identity: none with it as Received UUID, besides the parent itself.
 */
export async function rivalParents(parent: LocalSubvolume): Promise<string[]> {
  const all = await btrfs.subvolumeList(parent.path);
  return all
    .filter((s) => s.receivedUuid === parent.identity && s.uuid !== parent.uuid)
    .map((s) => s.absolutePath ?? s.path);
}

/** The btrfs mount that holds `dir`, or a restore_target_not_btrfs error that names the flag to fix. */
export async function btrfsMountOf(dir: string, what: string): Promise<MountEntry> {
  const stat = await fs.stat(dir).catch(() => null);
  if (!stat?.isDirectory()) {
    // A missing folder named "not a directory", or worse, judged by the filesystem above it, sent people to mkfs.
    const is = stat === null ? 'does not exist' : 'is not a directory';
    throw new RestoreTargetError('restore_target_missing', `${what} ${dir} ${is}: give a folder on the btrfs filesystem to restore into (mkdir it)`, { details: { dir } });
  }
  const mount = await findMount(dir);
  if (mount?.fsType !== 'btrfs') {
    throw new RestoreTargetError('restore_target_not_btrfs', `${what} ${dir} is on ${mount?.fsType ?? 'an unknown filesystem'}, not btrfs: btrfs receive needs a btrfs filesystem`, {
      details: { dir, fsType: mount?.fsType ?? null },
    });
  }
  return mount;
}

/**
 * DEST_DIR must take the spool and the received snapshot: a read-only snapshot (or a folder in one, or a filesystem
 * mounted read-only) cannot, and its mkdir would fail with a bare errno deep in the download.
 */
export async function assertWritable(dir: string, what: string): Promise<void> {
  const err = await fs.access(dir, fsConstants.W_OK).then(() => null, (e: NodeJS.ErrnoException) => e);
  if (err === null) return;
  const why = err.code === 'EROFS'
    ? 'is read-only (a read-only snapshot, or in one, or on a filesystem mounted read-only)'
    : `is not writable by this user (${err.code ?? err.message})`;
  throw new RestoreTargetError('restore_target_read_only', `${what} ${dir} ${why}: the restore writes its download and the snapshot there; choose another folder on that btrfs filesystem`, {
    details: { dir, errno: err.code ?? null },
  });
}
