/**
 * Which snapshot to restore from which parent. Pure: the caller gathers the facts (the server's catalog of the
 * volume, the read-only snapshots in the restore's folders), this decides (docs/design.md, "Conventions" 6).
 *
 * Rules:
 * - The catalog lists each snapshot by the UUID its stream carries (the client snapshot's own UUID, which is the
 *   received subvolume's Received UUID on the server); a local snapshot whose identity (Received UUID, else UUID)
 *   is that UUID is the same snapshot, whether it is the original that was pushed or an earlier restore of it.
 * - The target already there (a local snapshot with its identity): nothing to restore.
 * - Otherwise the parent is the newest snapshot that the server received before the target (the catalog's order)
 *   and that the restoring machine holds: an incremental stream from it. With none, the restore is full.
 * - Never a parent the server flags as changed by hand (Snapshot.altered): the stream would be the difference from
 *   the changed copy, applied here to the unchanged one.
 */
import { SnapferryError } from '../../core/errors.ts';
import type { Snapshot } from '../../core/protocol.ts';
import type { LocalSubvolume } from './local.ts';

export interface RestorePlanInput {
  /** The snapshot's name on the server. */
  name: string;
  /** The volume's snapshots on the server, oldest first (as GET /v1/volumes/:volume/snapshots lists them). */
  catalog: readonly Snapshot[];
  /** Read-only snapshots on the restoring machine that could be the parent or the target itself. */
  local: readonly LocalSubvolume[];
}

export interface RestorePlan {
  target: Snapshot;
  parent: { server: Snapshot; local: LocalSubvolume } | null;
  /** The target is already here: nothing to do. */
  present: LocalSubvolume | null;
}

export class RestorePlanError extends SnapferryError {}

export function planRestore(input: RestorePlanInput): RestorePlan {
  const at = input.catalog.findIndex((s) => s.name === input.name);
  const target = input.catalog[at];
  if (target === undefined) {
    const held = input.catalog.map((s) => s.name);
    throw new RestorePlanError(
      'snapshot_not_on_server',
      `the server holds no snapshot ${input.name} in this volume` + (held.length > 0 ? `; it holds ${summary(held)}` : '; it holds none'),
      { details: { snapshot: input.name, held: held.slice(-20) } },
    );
  }
  const byIdentity = new Map<string, LocalSubvolume>();
  for (const l of input.local) if (!byIdentity.has(l.identity)) byIdentity.set(l.identity, l);
  const present = byIdentity.get(target.uuid) ?? null;
  if (present) return { target, parent: null, present };
  for (let i = at - 1; i >= 0; i--) {
    const server = input.catalog[i]!;
    const local = byIdentity.get(server.uuid);
    if (local && server.altered === null) return { target, parent: { server, local }, present: null };
  }
  return { target, parent: null, present: null };
}

function summary(names: readonly string[]): string {
  return names.length <= 5 ? names.join(', ') : `${names.slice(0, 2).join(', ')}, ... ${names.slice(-2).join(', ')} (${names.length})`;
}
