/**
 * Whether a received snapshot is still what `btrfs receive` left: read-only, with the Received UUID that names the
 * client's snapshot. An admin can change either by hand (`btrfs property set PATH ro false`; with -f, which current
 * btrfs-progs require for a received subvolume, it also clears the Received UUID). Its content may then differ from
 * the client's snapshot, and an incremental built on it would reproduce the client's changes on top of someone
 * else's: the server would hold a tree that exists on neither side, and say it was received. Such a snapshot is
 * flagged, kept in the catalog and shown rather than forgotten (it may be the only copy of something; retention
 * still deletes it in its turn like any other snapshot, as the policy asked), and never a parent.
 *
 * Flags and Received UUID can be put back as they were, and the SUBVOL_SETFLAGS ioctl leaves the Received UUID alone:
 * a snapshot made writable, changed and made read-only again looks as received in every flag. Its ctransid does not:
 * btrfs moves it on with any change to a file in it (a balance, which moves the Generation, leaves it), so the one
 * recorded at its receive tells it (`changed_since_received`). A record from before it was recorded learns it at the
 * first look (Catalog.noteCtransid).
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

/** What the disk says of a snapshot: `btrfs subvolume show`, and its ctransid (null where it could not be read). */
export type ShownSnapshot = Pick<SubvolumeInfo, 'uuid' | 'receivedUuid' | 'readonly'> & { ctransid: number | null };

type JudgedRecord = { uuid: string; receivedUuid?: string | undefined; serverUuid: string; ctransid?: number | undefined };

/** Pure: whether a snapshot's ctransid now (`found`) says it was changed since it was received. */
export function changedSinceReceived(record: Pick<JudgedRecord, 'ctransid'>, found: number | null): boolean {
  return record.ctransid !== undefined && found !== null && found !== record.ctransid;
}

/** Pure: what the disk says of a catalog record (`shown`: what its path holds, null when no subvolume). */
export function judgeSnapshot(record: JudgedRecord, shown: ShownSnapshot | null): Verdict {
  if (shown === null) return { kind: 'gone', reason: 'deleted from disk' };
  // What the disk should say is the client's UUID in its namespace (server/uuid-namespace.ts).
  const expected = receivedUuidOf(record);
  // The received subvolume's own UUID is the evidence that it is the same one, whatever was done to its flags.
  const same = shown.receivedUuid === expected || shown.uuid === record.serverUuid;
  if (!same) return { kind: 'gone', reason: 'replaced on disk by another subvolume' };
  const what: Alteration[] = [];
  if (!shown.readonly) what.push('not_read_only');
  if (shown.receivedUuid !== expected) what.push('received_uuid_lost');
  if (changedSinceReceived(record, shown.ctransid)) what.push('changed_since_received');
  return what.length === 0 ? { kind: 'intact' } : { kind: 'altered', what };
}

const WORDS: Record<Alteration, string> = {
  not_read_only: 'is no longer read-only',
  received_uuid_lost: 'has lost its Received UUID',
  changed_since_received: 'has been written to since it was received (its ctransid moved on)',
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
