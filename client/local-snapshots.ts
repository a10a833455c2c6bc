/**
 * What the user named on the command line, as local read-only snapshots, and which other read-only subvolumes of
 * the same filesystem could serve as a parent. A snapshot's identity is the UUID that `btrfs send` puts in its
 * stream: its Received UUID if it was itself received, its own UUID otherwise (btrfs send.c does the same).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import * as btrfs from '../core/btrfs/index.ts';
import { SnapferryError } from '../core/errors.ts';
import { parseName } from '../core/names.ts';
import type { LocalSnapshot } from '../core/plan.ts';
import { snapshotTimes } from './snapshot-time.ts';

export class SnapshotArgumentError extends SnapferryError {}

function identity(info: btrfs.SubvolumeInfo): string {
  return info.receivedUuid ?? info.uuid;
}

/** A snapshot as the planner sees it; `snapperDate`: the <date> of snapper's info.xml beside it. */
function local(p: string, name: string, info: btrfs.SubvolumeInfo, snapperDate: Date | null = null): LocalSnapshot {
  const { time, created } = snapshotTimes(name, info.creationTime, snapperDate);
  return { name, path: p, uuid: identity(info), localUuid: info.uuid, origin: info.parentUuid, generation: info.genAtCreation, created, time };
}

async function describe(p: string, name: string): Promise<LocalSnapshot> {
  return local(p, parseName(name, 'snapshot name'), await btrfs.subvolumeShow(p));
}

async function readonlySubvolume(p: string): Promise<boolean | null> {
  if (!(await btrfs.isSubvolume(p))) return null;
  return btrfs.getReadonly(p);
}

/** Read-only snapshots directly inside `dir` (btrbk), or as `dir/N/snapshot` (snapper). */
async function snapshotsIn(dir: string): Promise<LocalSnapshot[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const found: LocalSnapshot[] = [];
  for (const e of entries.filter((x) => x.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if ((await readonlySubvolume(p)) === true) {
      found.push(await describe(p, e.name));
      continue;
    }
    const snapper = path.join(p, 'snapshot');
    if ((await readonlySubvolume(snapper)) === true) found.push(await describe(snapper, e.name));
  }
  return found;
}

export async function resolveRequested(args: readonly string[]): Promise<LocalSnapshot[]> {
  const out: LocalSnapshot[] = [];
  for (const arg of args) {
    const p = path.resolve(arg);
    const stat = await fs.stat(p).catch(() => null);
    if (!stat?.isDirectory()) {
      throw new SnapshotArgumentError('snapshot_not_found', `${arg} is not a directory: give a read-only snapshot or a folder of them`);
    }
    const ro = await readonlySubvolume(p);
    if (ro === true) {
      out.push(await describe(p, path.basename(p)));
      continue;
    }
    const inside = await snapshotsIn(p);
    if (inside.length > 0) {
      out.push(...inside);
      continue;
    }
    if (ro === false) {
      throw new SnapshotArgumentError(
        'snapshot_not_readonly',
        `${arg} is a writable subvolume; btrfs can only send read-only snapshots. Take one with ` +
          `\`btrfs subvolume snapshot -r ${arg} ${arg}.$(date +%Y%m%dT%H%M)\` and push that`,
      );
    }
    throw new SnapshotArgumentError('snapshot_not_found', `${arg} is neither a btrfs snapshot nor a folder holding read-only snapshots`);
  }
  return out;
}

/**
 * Read-only subvolumes of the filesystem holding `near` whose identity is in `wanted` (the server's snapshots):
 * the possible parents. Only these few are looked at closely.
 */
export async function findParentCandidates(near: string, wanted: ReadonlySet<string>): Promise<LocalSnapshot[]> {
  if (wanted.size === 0) return [];
  const listed = await btrfs.subvolumeList(near, { readonlyOnly: true });
  const out: LocalSnapshot[] = [];
  for (const entry of listed) {
    const id = entry.receivedUuid ?? entry.uuid;
    if (!wanted.has(id) || entry.absolutePath === null) continue;
    const info = await btrfs.subvolumeShow(entry.absolutePath).catch(() => null);
    if (!info || identity(info) !== id) continue;
    out.push(local(entry.absolutePath, path.basename(entry.absolutePath), info));
  }
  return out;
}
