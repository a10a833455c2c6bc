/**
 * Which source subvolume each snapshot is of, so that a volume holds the snapshots of one source. Pure.
 *
 * btrfs records a snapshot's source as its Parent UUID: every snapshot of one subvolume has that subvolume's UUID
 * there. A snapshot that was received (a restore, a btrbk target) has instead the local UUID of the snapshot it was
 * received onto, or none at all for a full receive; so a snapshot whose Parent UUID is another known snapshot's own
 * UUID is of that one's source, and a received chain is one source, whose origin btrfs does not know. A received
 * snapshot whose Parent UUID is no known snapshot (the one it was received onto was deleted since, or is not among
 * those given) is of such a chain too: that UUID names a copy here, never a source subvolume, and taken for one it
 * made a restored copy "another subvolume's snapshot" (a full send, and a note to give it a volume of its own).
 */
import { parseNameTime } from './snapshot-name.ts';
import { takenOrder } from './taken-order.ts';
import type { LocalSnapshot } from './local-snapshot.ts';

type Lineage = Pick<LocalSnapshot, 'uuid' | 'localUuid' | 'origin'>;

/**
 * Each snapshot's source, by its local UUID: the source subvolume's UUID, or `received:<UUID of the first known of
 * its chain>` for a received chain (btrfs keeps no source for one).
 */
export function sourceKeys(snapshots: readonly Lineage[]): Map<string, string> {
  const byLocalUuid = new Map(snapshots.map((s) => [s.localUuid, s]));
  const keys = new Map<string, string>();
  for (const s of snapshots) {
    const seen = new Set<string>();
    let at = s;
    // Up through the known snapshots only; `seen` stops a loop that no real filesystem has.
    while (at.origin !== null && byLocalUuid.has(at.origin) && !seen.has(at.localUuid)) {
      seen.add(at.localUuid);
      at = byLocalUuid.get(at.origin)!;
    }
    // A Received UUID (uuid, the identity, differs from its own UUID): its Parent UUID is what it was received onto.
    const received = at.uuid !== at.localUuid;
    keys.set(s.localUuid, at.origin !== null && !received ? at.origin : `received:${at.localUuid}`);
  }
  return keys;
}

export interface SourceGroup {
  /** The source subvolume's UUID, or null for a chain of received snapshots (btrfs does not say). */
  origin: string | null;
  /** btrbk's NAME (or our volume) when every name in the group has the same one; else null. */
  label: string | null;
  /** Oldest first, by when each was taken (core/taken-order.ts). */
  snapshots: LocalSnapshot[];
}

/** The groups, in the order their first snapshot was given. */
export function sourceGroups(snapshots: readonly LocalSnapshot[]): SourceGroup[] {
  const keys = sourceKeys(snapshots);
  const groups = new Map<string, SourceGroup>();
  for (const s of snapshots) {
    const key = keys.get(s.localUuid)!;
    const group = groups.get(key) ?? { origin: key.startsWith('received:') ? null : key, label: null, snapshots: [] };
    group.snapshots.push(s);
    groups.set(key, group);
  }
  for (const g of groups.values()) {
    g.snapshots.sort(takenOrder(g.snapshots));
    const prefixes = new Set(g.snapshots.map((s) => parseNameTime(s.name, 'local')?.prefix ?? null));
    const [only] = prefixes;
    g.label = prefixes.size === 1 && typeof only === 'string' ? only : null;
  }
  return [...groups.values()];
}
