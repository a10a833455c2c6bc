/**
 * Whether a received snapshot is still what `btrfs receive` left: read-only, with the Received UUID that names the
 * client's snapshot. An admin can change either by hand (`btrfs property set PATH ro false`; with -f, which current
 * btrfs-progs require for a received subvolume, it also clears the Received UUID). Its content may then differ from
 * the client's snapshot, and an incremental built on it would reproduce the client's changes on top of someone
 * else's: the server would hold a tree that exists on neither side, and say it was received. Such a snapshot is
 * flagged, kept in the catalog and shown rather than forgotten (it may be the only copy of something; retention
 * still deletes it in its turn like any other snapshot, as the policy asked), and never a parent.
 *
 * The flag stays once set: making the subvolume read-only again does not prove that nothing changed while it was
 * writable, and a lost Received UUID cannot be set back by hand. Deleting the subvolume (btrfs subvolume delete) and
 * pushing the snapshot again is what clears it.
 */
import { SnapferryError } from '../core/errors.ts';
import type { Alteration, SnapshotAltered } from '../core/protocol.ts';
import type { SubvolumeInfo } from '../core/btrfs/index.ts';
import { receivedUuidOf } from './uuid-namespace.ts';

export type Verdict =
  /** As received. */
  | { kind: 'intact' }
  /** The same subvolume, changed by hand. */
  | { kind: 'altered'; what: Alteration[] }
  /** No subvolume there, or another one than was received. */
  | { kind: 'gone'; reason: string };

/** Pure: what the disk says of a catalog record (`shown`: `btrfs subvolume show` of its path, null when none). */
export function judgeSnapshot(
  record: { uuid: string; receivedUuid?: string | undefined; serverUuid: string },
  shown: Pick<SubvolumeInfo, 'uuid' | 'receivedUuid' | 'readonly'> | null,
): Verdict {
  if (shown === null) return { kind: 'gone', reason: 'deleted from disk' };
  // What the disk should say is the client's UUID in its namespace (server/uuid-namespace.ts).
  const expected = receivedUuidOf(record);
  // The received subvolume's own UUID is the evidence that it is the same one, whatever was done to its flags.
  const same = shown.receivedUuid === expected || shown.uuid === record.serverUuid;
  if (!same) return { kind: 'gone', reason: 'replaced on disk by another subvolume' };
  const what: Alteration[] = [];
  if (!shown.readonly) what.push('not_read_only');
  if (shown.receivedUuid !== expected) what.push('received_uuid_lost');
  return what.length === 0 ? { kind: 'intact' } : { kind: 'altered', what };
}

const WORDS: Record<Alteration, string> = {
  not_read_only: 'is no longer read-only',
  received_uuid_lost: 'has lost its Received UUID',
  chain_full: "ends a chain of the archive that takes no more incrementals",
};

/** "is no longer read-only and has lost its Received UUID" */
export function describeAlterations(what: readonly Alteration[]): string {
  return what.map((w) => WORDS[w]).join(' and ');
}

type AlteredParent = { volume: string; name: string; uuid: string; altered: SnapshotAltered | null };

/** The refusal of an incremental onto a snapshot changed by hand on the server (server/alterations.ts). */
export function parentAltered(parent: AlteredParent): SnapferryError {
  const what = describeAlterations(parent.altered?.what ?? []);
  return new SnapferryError(
    'parent_altered',
    `the server's copy of ${parent.volume}/${parent.name}, the parent this incremental would build on, was changed by hand on the ` +
      `server: it ${what} (found ${parent.altered?.foundAt ?? 'now'}), so its content may no longer be the snapshot that was sent and ` +
      'nothing is built on it. snapferry push sends on another parent, or in full, by itself (an older client: push again). It stays on the server, flagged; ' +
      'to use it as a parent again, delete it there (btrfs subvolume delete) and push it again',
    { details: { parentUuid: parent.uuid, snapshot: parent.name, altered: parent.altered } },
  );
}
