/**
 * What a restore finds on the restoring machine: the read-only snapshots in a folder (the possible parents, or the
 * snapshot itself, already there) and whether a folder is on btrfs at all. A snapshot's identity is the UUID that
 * `btrfs send` puts in its stream and the server's catalog lists: its Received UUID if it was itself received (a
 * restored snapshot), its own UUID otherwise (the original a push once sent).
 */
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
    found.push({ name: e.name, path: p, identity: info.receivedUuid ?? info.uuid });
  }
  return found;
}

/** The btrfs mount that holds `dir`, or a restore_target_not_btrfs error that names the flag to fix. */
export async function btrfsMountOf(dir: string, what: string): Promise<MountEntry> {
  const stat = await fs.stat(dir).catch(() => null);
  if (!stat?.isDirectory()) {
    throw new RestoreTargetError('restore_target_missing', `${what} ${dir} is not a directory: create it on the btrfs filesystem to restore into`, { details: { dir } });
  }
  const mount = await findMount(dir);
  if (mount?.fsType !== 'btrfs') {
    throw new RestoreTargetError('restore_target_not_btrfs', `${what} ${dir} is on ${mount?.fsType ?? 'an unknown filesystem'}, not btrfs: btrfs receive needs a btrfs filesystem`, {
      details: { dir, fsType: mount?.fsType ?? null },
    });
  }
  return mount;
}
