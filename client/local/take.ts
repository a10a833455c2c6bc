/**
 * `snapferry snapshot`: a read-only snapshot of a volume's source subvolume, named `<volume>.<YYYYMMDDTHHMMSSZ>`
 * (core/snapshot-name.ts) in its snapshot folder, when the newest one is older than `snapshotEvery`. The snapshots
 * of a volume are the read-only subvolumes in that folder whose names are in this form with its name as prefix:
 * `run` pushes and prunes those and never touches anything else in the folder (snapshots taken by hand, by btrbk or
 * by snapper, other volumes' snapshots in a shared folder).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import * as btrfs from '../../core/btrfs/index.ts';
import { findMount } from '../../core/btrfs/mounts.ts';
import { SnapferryError, ValidationError } from '../../core/errors.ts';
import { parseSnapshotName, parseVolumeName, snapshotName } from '../../core/snapshot-name.ts';
import { takenOrder, takenTime } from '../../core/taken-order.ts';
import type { LocalSnapshot } from '../../core/plan.ts';

/** What `snapshot` needs of a configured volume. */
export interface SnapshotSettings {
  /** The writable subvolume to snapshot. */
  source: string;
  /** Where its read-only snapshots go; on the same btrfs filesystem as the source. */
  snapshotDir: string;
  /** Milliseconds: take a new snapshot only when the newest is at least this old. Unset: every time. */
  snapshotEvery?: number;
}

export interface OwnSnapshot extends LocalSnapshot {
  /** When it was taken, from its name. */
  time: Date;
}

export class SnapshotError extends SnapferryError {}

/** What listOwnSnapshots finds in a volume's snapshot folder. */
export interface OwnSnapshots {
  /** The volume's snapshots, by the time in their names. */
  snapshots: OwnSnapshot[];
  /**
   * Names that look like the volume's (`VOLUME.` and more) but are not in the form `snapshot` gives its snapshots,
   * sorted: made by hand or by another tool, so retention leaves them alone, which a dry run says (a new user's
   * `home.20261201T0100` would otherwise seem overlooked).
   */
  passedOver: string[];
}

/**
 * The volume's snapshots in `snapshotDir`, by the time in their names (see the comment at the top), and the names it
 * passes over, from one read of the folder. Which is newest is for core/taken-order.ts to say (newestTaken): a name can
 * give a time that cannot be right.
 */
export async function listOwnSnapshots(volume: string, snapshotDir: string): Promise<OwnSnapshots> {
  let names: string[];
  try {
    names = await fs.readdir(snapshotDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { snapshots: [], passedOver: [] };
    throw err;
  }
  const own: OwnSnapshot[] = [];
  const passedOver: string[] = [];
  for (const name of names.sort()) {
    const parsed = parseSnapshotName(name);
    if (parsed === null && name.startsWith(`${volume}.`)) passedOver.push(name);
    if (parsed?.prefix !== volume) continue;
    const p = path.join(snapshotDir, name);
    if (!(await btrfs.isSubvolume(p))) continue;
    const info = await btrfs.subvolumeShow(p);
    if (!info.readonly) continue;
    // The identity `btrfs send` puts in its stream, as client/local/snapshots.ts has it: Received UUID, else UUID.
    // Our names carry the time they were taken (client/local/taken-at.ts: a name's time wins over the otime).
    own.push({ name, path: p, uuid: info.receivedUuid ?? info.uuid, localUuid: info.uuid, origin: info.parentUuid, generation: info.genAtCreation, created: info.creationTime, time: parsed.time });
  }
  own.sort((a, b) => a.time.getTime() - b.time.getTime() || a.generation - b.generation);
  return { snapshots: own, passedOver };
}

/**
 * When the newest of `own` was taken, by the order and times push and prune go by (core/taken-order.ts): a snapshot
 * named in the future is dated by when btrfs made it, so it cannot hold off new snapshots until that date. Null when
 * there is none. Pure.
 */
export function newestTaken(own: readonly OwnSnapshot[], now: Date): Date | null {
  const newest = newestOf(own, now);
  // No believable time at all: its own, which snapshotDue finds after now (or it would have been believed).
  return newest ? (takenTime(newest, now) ?? newest.time) : null;
}

/** The newest of `own` by the order push and prune go by; null when there is none. */
function newestOf(own: readonly OwnSnapshot[], now: Date): OwnSnapshot | null {
  return [...own].sort(takenOrder(own, [], now)).at(-1) ?? null;
}

/** Whether a new snapshot is due, and a few words on why (pure). */
export function snapshotDue(newest: Date | null, every: number | undefined, now: Date, force = false): { due: boolean; why: string } {
  if (force) return { due: true, why: '--force' };
  if (newest === null) return { due: true, why: 'the volume has no snapshot yet' };
  if (every === undefined) return { due: true, why: 'no snapshotEvery: one each run' };
  const age = now.getTime() - newest.getTime();
  // A newest dated after now says nothing about how long ago the last snapshot was: a clock is or was wrong. One
  // snapshot too many costs little; none for as long as the clock is off would leave the source without backups.
  if (age < 0) return { due: true, why: `the newest is dated ${formatAge(-age)} after now: is a clock wrong?` };
  if (age >= every) return { due: true, why: `the newest is ${formatAge(age)} old (snapshotEvery ${formatAge(every)})` };
  return { due: false, why: `the newest is ${formatAge(age)} old, under snapshotEvery ${formatAge(every)}` };
}

export interface TakeOptions {
  force?: boolean;
  dryRun?: boolean;
  now?: Date;
  signal?: AbortSignal;
}

export interface SnapshotOutcome {
  /** The new snapshot's name; null when none was due (or, with dryRun, the name it would have). */
  taken: string | null;
  /** Its path, or the newest snapshot's when none was taken (null when there is none). */
  path: string | null;
  why: string;
}

/** Takes a read-only snapshot of the volume's source when one is due (see snapshotDue). */
export async function takeSnapshot(volume: string, settings: SnapshotSettings, options: TakeOptions = {}): Promise<SnapshotOutcome> {
  const name = parseVolumeName(volume);
  const now = options.now ?? new Date();
  const { snapshots: own } = await listOwnSnapshots(name, settings.snapshotDir);
  const decision = snapshotDue(newestTaken(own, now), settings.snapshotEvery, now, options.force);
  const newest = newestOf(own, now);
  if (!decision.due) return { taken: null, path: newest?.path ?? null, why: decision.why };

  if (!(await btrfs.isSubvolume(settings.source))) {
    throw new ValidationError(`the source of volume ${name}, ${settings.source}, is not a btrfs subvolume: give the subvolume to back up (btrfs subvolume list shows them)`, {
      details: { volume: name, source: settings.source },
    });
  }
  if (await inSourceSubvolume(settings.snapshotDir, settings.source)) {
    throw new ValidationError(
      `the snapshotDir of volume ${name}, ${settings.snapshotDir}, is inside its source ${settings.source}, in the same subvolume: ` +
        'each snapshot would be taken into the subvolume it is of, and every later one would hold an empty folder for each before it; ' +
        `put snapshotDir outside the source (e.g. /.snapshots/${name}), or make that folder a subvolume of its own (btrfs subvolume create)`,
      { details: { volume: name, source: settings.source, snapshotDir: settings.snapshotDir } },
    );
  }
  const [from, into] = await Promise.all([findMount(settings.source), findMount(await nearestExisting(settings.snapshotDir))]);
  // btrfs snapshots only within one filesystem: else its bare "Invalid cross-device link", after the run had begun.
  if (from !== null && into !== null && from.source !== into.source) {
    throw new ValidationError(
      `the snapshotDir of volume ${name}, ${settings.snapshotDir}, is on ${into.fsType === 'btrfs' ? 'another btrfs filesystem' : into.fsType} (${into.source}), ` +
        `not on the btrfs filesystem of its source ${settings.source} (${from.source}): btrfs takes a snapshot only on the source's own filesystem; ` +
        `give snapshotDir a folder there (e.g. /.snapshots/${name} on it)`,
      { details: { volume: name, source: settings.source, snapshotDir: settings.snapshotDir } },
    );
  }
  const snapName = snapshotName(name, now);
  const destination = path.join(settings.snapshotDir, snapName);
  if (options.dryRun === true) return { taken: snapName, path: destination, why: decision.why };
  if (await fs.lstat(destination).then(() => true, () => false)) {
    throw new SnapshotError('snapshot_exists', `${destination} already exists: snapshot names are to the second, so wait a moment and try again`, {
      retryable: true,
      details: { destination },
    });
  }
  await fs.mkdir(settings.snapshotDir, { recursive: true, mode: 0o700 });
  await btrfs.snapshot(settings.source, destination, { readonly: true, ...(options.signal ? { signal: options.signal } : {}) });
  return { taken: snapName, path: destination, why: decision.why };
}

/** Rounded down: "59m old, under 60m" must never read "60m old, under 60m". */
export function formatAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 2 * 3600) return `${Math.floor(s / 60)}m`;
  if (s < 2 * 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/**
 * Whether `dir` (made by mkdir -p if missing) lies in the subvolume `source` itself: it is `source` or inside it, and
 * no folder between them is a subvolume of its own. A nested subvolume is a boundary btrfs snapshots do not cross, so
 * /.snapshots as a subvolume under source / is right (snapper's layout), and a plain folder there is not.
 */
export async function inSourceSubvolume(dir: string, source: string): Promise<boolean> {
  const [folder, top] = [path.resolve(dir), path.resolve(source)];
  const rel = path.relative(top, folder);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return false;
  for (let at = folder; at !== top && at !== path.dirname(at); at = path.dirname(at)) {
    if (await btrfs.isSubvolume(at)) return false;
  }
  return true;
}

/** `p`, or the nearest folder above it that exists: where snapshotDir will be made (mkdir -p). */
async function nearestExisting(p: string): Promise<string> {
  let at = path.resolve(p);
  while (at !== path.dirname(at) && !(await fs.stat(at).then(() => true, () => false))) at = path.dirname(at);
  return at;
}
