/**
 * Which snapshot to restore from which parent. Pure: the caller gathers the facts (the server's catalog of the
 * volume, the read-only snapshots in the restore's folders), this decides (docs/design.md, "Conventions" 6).
 *
 * Rules:
 * - The catalog lists each snapshot by the UUID its stream carries (the client snapshot's own UUID, which is the
 *   received subvolume's Received UUID on the server); a local snapshot whose identity (Received UUID, else UUID)
 *   is that UUID is the same snapshot, whether it is the original that was pushed or an earlier restore of it.
 * - The target already in DEST_DIR (a snapshot there with its identity): nothing to restore. One held only in
 *   --parent-dir is not where it was asked for: it is restored into DEST_DIR all the same (`elsewhere` names it).
 * - Otherwise the parent is the newest snapshot that the server received before the target (the catalog's order)
 *   and that the restoring machine holds: an incremental stream from it. With none, the restore is full.
 * - Never a parent the server flags as changed by hand (Snapshot.altered): the stream would be the difference from
 *   the changed copy, applied here to the unchanged one. Nor one changed here after it was sent (`changedParents`,
 *   which the server said with parent_changed): the difference from the copy as sent, applied to the changed one.
 * - A snapshot the server holds as its pushed stream (Snapshot.storedStream, an archive) comes only on the parent it
 *   was pushed on: the plan is its chain's path, from after the newest member held here (or from the chain's full),
 *   each step on the one before. `before` lists the steps to restore ahead of the target, oldest first. A chain
 *   member's `altered` (chain_full) does not matter here: the stored stream is what was pushed, unchanged.
 */
import path from 'node:path';
import { SnapferryError } from '../../core/errors.ts';
import type { Snapshot } from '../../core/protocol.ts';
import type { LocalSubvolume } from './local.ts';

export interface RestorePlanInput {
  /** The snapshot's name on the server. */
  name: string;
  /** The volume it is asked from, for messages. */
  volume?: string;
  /** The volume's snapshots on the server, oldest first (as GET /v1/volumes/:volume/snapshots lists them). */
  catalog: readonly Snapshot[];
  /** Read-only snapshots on the restoring machine that could be the parent or the target itself. */
  local: readonly LocalSubvolume[];
  /** DEST_DIR: only a target held there counts as present; every folder of `local` when absent. */
  destDir?: string;
  /** Catalog UUIDs of snapshots changed here after they were sent (the server refused them: parent_changed). */
  changedParents?: ReadonlySet<string>;
}

export interface RestorePlan {
  target: Snapshot;
  /** The held snapshot the first stream builds on (the target's, when `before` is empty); null: that stream is full. */
  parent: { server: Snapshot; local: LocalSubvolume } | null;
  /** The target is already in DEST_DIR: nothing to do. */
  present: LocalSubvolume | null;
  /** The target held outside DEST_DIR (in --parent-dir), when it is not in DEST_DIR: restored there all the same. */
  elsewhere?: LocalSubvolume;
  /** Snapshots of the target's chain to restore first, oldest first (a stored stream's path); empty otherwise. */
  before: Snapshot[];
}

export class RestorePlanError extends SnapferryError {}

export function planRestore(input: RestorePlanInput): RestorePlan {
  const at = input.catalog.findIndex((s) => s.name === input.name);
  const target = input.catalog[at];
  if (target === undefined) {
    const held = input.catalog.map((s) => s.name);
    throw new RestorePlanError(
      'snapshot_not_on_server',
      held.length > 0
        ? `the server holds no snapshot ${input.name} in ${volumeName(input)}; it holds ${summary(held)}`
        // Nothing at all: most often a --volume that names no volume of this client's, not a snapshot name wrong.
        : `the server holds no snapshot in ${volumeName(input)}: no such volume, or nothing received into it yet ` +
          '(`snapferry status` lists the volumes the server holds and their snapshots); check --volume',
      { details: { snapshot: input.name, held: held.slice(-20) } },
    );
  }
  const byIdentity = new Map<string, LocalSubvolume>();
  for (const l of input.local) if (!byIdentity.has(l.identity)) byIdentity.set(l.identity, l);
  const copies = input.local.filter((l) => l.identity === target.uuid);
  const present = copies.find((l) => input.destDir === undefined || path.dirname(l.path) === input.destDir) ?? null;
  if (present) return { target, parent: null, present, before: [] };
  const elsewhere = copies.length > 0 ? { elsewhere: copies[0]! } : {};
  if (target.storedStream === true) return { ...planChain(target, input.catalog, byIdentity, input.changedParents ?? new Set()), ...elsewhere };
  for (let i = at - 1; i >= 0; i--) {
    const server = input.catalog[i]!;
    const local = byIdentity.get(server.uuid);
    if (local && server.altered === null && !input.changedParents?.has(server.uuid)) return { target, parent: { server, local }, present: null, before: [], ...elsewhere };
  }
  return { target, parent: null, present: null, before: [], ...elsewhere };
}

const volumeName = (input: RestorePlanInput): string => (input.volume === undefined ? 'this volume' : `volume ${input.volume}`);

/** A stored stream's restore: the path from its chain's full, cut after the newest member held here. */
function planChain(target: Snapshot, catalog: readonly Snapshot[], byIdentity: ReadonlyMap<string, LocalSubvolume>, changed: ReadonlySet<string>): RestorePlan {
  const byUuid = new Map(catalog.map((s) => [s.uuid, s]));
  const path: Snapshot[] = [];
  const seen = new Set<string>();
  for (let at: Snapshot | undefined = target; at !== undefined; ) {
    path.unshift(at);
    seen.add(at.uuid);
    const local = at === target || changed.has(at.uuid) ? undefined : byIdentity.get(at.uuid);
    if (local) return { target, parent: { server: at, local }, present: null, before: path.slice(1, -1) };
    if (at.parentUuid === null) return { target, parent: null, present: null, before: path.slice(0, -1) };
    const parentUuid: string = at.parentUuid;
    if (seen.has(parentUuid)) {
      throw new RestorePlanError('chain_broken', `the server's chain of ${target.name} loops back on itself; restore a snapshot of another chain`, {
        details: { snapshot: target.name },
      });
    }
    at = byUuid.get(parentUuid);
    if (at === undefined) {
      throw new RestorePlanError('chain_broken', `the server lacks ${parentUuid}, which the restore of ${target.name} needs (${path[0]!.name} is an incremental on it); restore a snapshot of another chain`, {
        details: { snapshot: target.name, missing: parentUuid },
      });
    }
  }
  /* c8 ignore next */
  throw new Error('unreachable');
}

function summary(names: readonly string[]): string {
  return names.length <= 5 ? names.join(', ') : `${names.slice(0, 2).join(', ')}, ... ${names.slice(-2).join(', ')} (${names.length})`;
}
