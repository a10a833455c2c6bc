/**
 * What the user named on the command line, as local read-only snapshots (a snapshot, or a folder of them: btrbk's
 * layout, several sources side by side, or snapper's `.snapshots/N/snapshot`), and which other read-only subvolumes of
 * the same filesystem could serve as a parent. A snapshot's identity is the UUID that `btrfs send` puts in its
 * stream: its Received UUID if it was itself received, its own UUID otherwise (btrfs send.c does the same).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import * as btrfs from '../../core/btrfs/index.ts';
import { SnapferryError } from '../../core/errors.ts';
import { isSafeName, MAX_NAME_LENGTH, NAME_RULE, parseName, preview } from '../../core/names.ts';
import type { LocalSnapshot } from '../../core/plan.ts';
import { snapshotTimes } from './taken-at.ts';
import { SNAPPER_SNAPSHOT, snapperDate, snapperName } from './snapper.ts';
import { parseNameTime } from '../../core/snapshot-name.ts';
import { namespacedUuid } from '../../core/uuid-namespace.ts';

export class SnapshotArgumentError extends SnapferryError {}

function identity(info: btrfs.SubvolumeInfo): string {
  return info.receivedUuid ?? info.uuid;
}

/** A snapshot as the planner sees it; `snapperDate`: the <date> of snapper's info.xml beside it. */
function local(p: string, name: string, info: btrfs.SubvolumeInfo, snapperDate: Date | null = null): LocalSnapshot {
  const { time, created } = snapshotTimes(name, info.creationTime, snapperDate, info.receivedUuid !== null);
  return { name, path: p, uuid: identity(info), localUuid: info.uuid, origin: info.parentUuid, generation: info.genAtCreation, created, time };
}

async function describe(p: string, name: string): Promise<LocalSnapshot> {
  const snapper = snapperName(p) !== null ? await snapperDate(p) : null;
  return local(p, parseName(name, 'snapshot name'), await btrfs.subvolumeShow(p), snapper);
}

async function readonlySubvolume(p: string): Promise<boolean | null> {
  if (!(await btrfs.isSubvolume(p))) return null;
  return btrfs.getReadonly(p);
}

export interface ResolveOptions {
  /**
   * The volume pushed to: in a folder of snapshots named after several sources side by side (btrbk's
   * `NAME.YYYYMMDD[Thhmm[ss]][_N]`), the ones named after the volume, when there are any.
   */
  volume?: string;
  /** Sentences for the user: what was skipped or picked, and why. */
  note?: (message: string) => void;
  /**
   * The paths are a volume's configured snapshotDir, a folder of snapshots (a plain folder or a subvolume), never a
   * snapshot to take: one that holds none yet says so, not how to snapshot the folder itself.
   */
  snapshotDir?: boolean;
  /**
   * Instead of the note on the snapshots pickVolume leaves out (not named after the volume): the caller says it once it
   * knows which of them the server holds in this volume (push: those are this volume's, and may be parents).
   */
  setAside?: (aside: SetAside) => void;
}

/** A folder's snapshots not named after the volume, left out of the push (btrbk's layout). */
export interface SetAside {
  dir: string;
  volume: string;
  /** How many are named after the volume, and pushed. */
  named: number;
  others: LocalSnapshot[];
}

/**
 * The note on a folder's snapshots left out. One of them the server holds in this volume (pushed by its path) is
 * this volume's whatever its name, and push may build on it: it is not counted among "not this volume's".
 */
export function setAsideNote({ dir, volume, named, others }: SetAside, heldHere: (s: LocalSnapshot) => boolean = () => false): string {
  const held = others.filter(heldHere).length;
  const notOurs = others.length - held;
  const heldPart = held === 0 ? '' : `${held} not so named the server holds in this volume (not sent again; the next may build on them)`;
  const rest = notOurs === 0 ? `; ${heldPart}` : `; the other ${notOurs} are not this volume's${held === 0 ? '' : `, and ${heldPart}`}`;
  return `${dir}: pushing the ${named} snapshots named ${volume}.<date> (btrbk's layout)${rest}`;
}

const byNumberOrName = (a: string, b: string): number =>
  /^\d+$/.test(a) && /^\d+$/.test(b) ? Number(a) - Number(b) : a.localeCompare(b);

/**
 * Read-only snapshots directly inside `dir` (btrbk, or any folder of snapshots), or as `dir/N/snapshot` (snapper's
 * `.snapshots`). Skipped with a note: read-write subvolumes (btrfs sends only read-only snapshots), and snapshots
 * whose names cannot be names on the server. A folder is whatever its tools and people put there: one stray name
 * must not keep the good snapshots beside it from being sent. A snapshot named on the command line is refused instead.
 */
async function snapshotsIn(dir: string, note: (m: string) => void): Promise<LocalSnapshot[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const found: LocalSnapshot[] = [];
  const writable: string[] = [];
  const misnamed: string[] = [];
  const take = async (p: string, name: string) => {
    if (isSafeName(name)) found.push(await describe(p, name));
    else misnamed.push(name);
  };
  for (const e of entries.filter((x) => x.isDirectory()).sort((a, b) => byNumberOrName(a.name, b.name))) {
    const p = path.join(dir, e.name);
    const ro = await readonlySubvolume(p);
    if (ro === true) {
      await take(p, e.name);
      continue;
    }
    if (ro === false) {
      writable.push(e.name);
      continue;
    }
    const snapper = path.join(p, SNAPPER_SNAPSHOT);
    const snapperRo = await readonlySubvolume(snapper);
    if (snapperRo === true) await take(snapper, e.name);
    else if (snapperRo === false) writable.push(path.join(e.name, SNAPPER_SNAPSHOT));
  }
  if (writable.length > 0) {
    note(
      `skipping ${writable.length} read-write subvolume${writable.length === 1 ? '' : 's'} in ${dir} (${writable.join(', ')}): btrfs sends ` +
        'only read-only snapshots (snapper makes them read-only unless told --read-write; btrbk always does)',
    );
  }
  if (misnamed.length > 0) {
    const several = misnamed.length > 1;
    note(
      `skipping ${misnamed.length} snapshot${several ? 's' : ''} in ${dir} whose name${several ? 's' : ''} snapferry cannot use ` +
        `(${misnamed.map(preview).join(', ')}): a snapshot's name becomes its name on the server, so it must be 1 to ${MAX_NAME_LENGTH} characters: ${NAME_RULE}; ` +
        `rename ${several ? 'them' : 'it'} (mv) to push ${several ? 'them' : 'it'}`,
    );
  }
  return found;
}

/** btrbk's layout: of a folder's snapshots, those named `VOLUME.<date>`, when any are. */
function pickVolume(dir: string, found: LocalSnapshot[], volume: string | undefined, options: ResolveOptions & { note: (m: string) => void }): LocalSnapshot[] {
  if (volume === undefined) return found;
  const named = found.filter((s) => parseNameTime(s.name, 'local')?.prefix === volume);
  if (named.length === 0 || named.length === found.length) return found;
  const aside = { dir, volume, named: named.length, others: found.filter((s) => !named.includes(s)) };
  if (options.setAside) options.setAside(aside);
  else options.note(setAsideNote(aside));
  return named;
}

export async function resolveRequested(args: readonly string[], options: ResolveOptions = {}): Promise<LocalSnapshot[]> {
  const note = options.note ?? (() => undefined);
  const out: LocalSnapshot[] = [];
  for (const arg of args) {
    const p = path.resolve(arg);
    const stat = await fs.stat(p).catch(() => null);
    if (!stat?.isDirectory()) {
      throw new SnapshotArgumentError('snapshot_not_found', `${arg} is not a directory: give a read-only snapshot or a folder of them`);
    }
    const ro = await readonlySubvolume(p);
    if (ro === true) {
      out.push(await describe(p, snapperName(p) ?? path.basename(p)));
      continue;
    }
    const inside = pickVolume(arg, await snapshotsIn(p, note), options.volume, { ...options, note });
    if (inside.length > 0) {
      out.push(...inside);
      continue;
    }
    if (options.snapshotDir === true) {
      throw new SnapshotArgumentError('snapshot_not_taken_yet', `no snapshots yet in ${arg} (take one with \`snapferry snapshot\`)`, { details: { dir: arg } });
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
export async function findParentCandidates(near: string, wanted: ReadonlySet<string>, namespacedFor?: string): Promise<LocalSnapshot[]> {
  if (wanted.size === 0) return [];
  const listed = await btrfs.subvolumeList(near, { readonlyOnly: true });
  const out: LocalSnapshot[] = [];
  // With `namespacedFor` (a client name), a UUID is wanted in that client's namespace on the server too: a snapshot
  // the server lists without knowing its UUID (Snapshot.uuidUnknown, core/uuid-namespace.ts).
  const isWanted = (id: string) => wanted.has(id) || (namespacedFor !== undefined && wanted.has(namespacedUuid(namespacedFor, id)));
  for (const entry of listed) {
    const id = entry.receivedUuid ?? entry.uuid;
    if (!isWanted(id) || entry.absolutePath === null) continue;
    const info = await btrfs.subvolumeShow(entry.absolutePath).catch(() => null);
    if (!info || identity(info) !== id) continue;
    const snapper = snapperName(entry.absolutePath);
    out.push(local(entry.absolutePath, snapper ?? path.basename(entry.absolutePath), info, snapper !== null ? await snapperDate(entry.absolutePath) : null));
  }
  return out;
}
