/**
 * What push plans on besides the snapshots it sends: the possible parents elsewhere on the filesystem, and the
 * server's listing as this client knows it. Push plans on them, and prune (client/run/prune.ts) keeps what that plan
 * needs: both read them here, so that the two never disagree on which snapshot the next incremental starts from.
 */
import type { LocalSnapshot } from '../../core/plan.ts';
import type { Snapshot, SnapshotList } from '../../core/protocol.ts';
import { withClientUuids } from '../../core/uuid-namespace.ts';
import { findParentCandidates } from '../local/snapshots.ts';

export interface PlanFacts {
  /** Read-only subvolumes of the filesystem the server holds: any may be a parent (taken by hand, restored, ...). */
  candidates: LocalSnapshot[];
  /** The server's listing, each of this client's snapshots by its own UUID (core/uuid-namespace.ts withClientUuids). */
  server: Snapshot[];
}

/** The facts for a plan of `requested` (at least one) on what the server holds (`held`). */
export async function planFacts(held: SnapshotList, requested: readonly LocalSnapshot[]): Promise<PlanFacts> {
  const wanted = new Set([...held.snapshots, ...held.removed].map((s) => s.uuid));
  // A snapshot the server lost the UUID of is listed by its namespaced one (Snapshot.uuidUnknown): found here by it.
  const lost = held.snapshots.some((s) => s.uuidUnknown) ? held.client : undefined;
  const candidates = await findParentCandidates(requested[0]!.path, wanted, lost);
  const server = withClientUuids(held.snapshots, held.client, [...requested, ...candidates].map((s) => s.uuid));
  return { candidates, server };
}
