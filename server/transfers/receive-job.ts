/**
 * What the receive of a transfer must check (server/receiver.ts ReceiveJob), decided from the transfer and the
 * snapshots its volume holds; pure, the service hands in the catalog's facts.
 */
import type { SafeName } from '../../core/names.ts';
import type { SendStreamPolicy } from '../../core/wire/sendstream-policy.ts';
import type { SendUuidMap } from '../../core/wire/sendstream-uuids.ts';
import type { ParentEntryLookup } from '../../core/wire/sendstream-symlinks.ts';
import type { SnapshotRecord, TransferRecord } from '../catalog.ts';
import type { PrivilegedFiles } from '../mount-safety.ts';
import type { ReceiveJob } from '../receiver.ts';

/** The rules a stream must follow to be received (core/wire/sendstream-policy.ts), as data. */
export function receivePolicy(
  t: TransferRecord,
  volumeSnapshots: readonly SnapshotRecord[],
  privilegedFiles: PrivilegedFiles,
  parentEntries?: ParentEntryLookup,
): SendStreamPolicy {
  const refuse = privilegedFiles === 'refuse';
  return {
    // An incremental's parent is a snapshot of this volume, inside the chroot: a path through one of its symlinks
    // would reach the volume folder beside it (core/wire/sendstream-symlinks.ts).
    ...(parentEntries ? { parentEntries } : {}),
    parentUuid: t.parentUuid,
    // Only this volume's own snapshots: they lie inside the directory btrfs receive is chrooted to, so not even a
    // symlink in a clone source's path can lead out of it (clone sources are opened from outside the chroot).
    // Never one changed by hand (server/alterations.ts): its extents may no longer be the ones the stream means.
    cloneSources: volumeSnapshots.filter((s) => s.altered === null).map((s) => s.uuid),
    allowDevices: !refuse,
    allowSetuid: !refuse,
  };
}

export interface JobFacts {
  /** The snapshots of the transfer's volume. */
  volumeSnapshots: readonly SnapshotRecord[];
  privilegedFiles: PrivilegedFiles;
  /** The client's UUIDs to the Received UUIDs on disk (server/uuid-namespace.ts). */
  toDisk: SendUuidMap;
  /** What the incremental's parent snapshot holds at a path (core/receive/parent-entries.ts); absent for a full. */
  parentEntries?: ParentEntryLookup;
  /** Throws when the UUID has been taken meanwhile (checked just before the snapshot takes its name). */
  confirm: () => void;
  /** What others hold in the volume's folder when the receive's cleanup runs (server/volume-folder.ts othersInFolder). */
  othersNames: () => readonly string[];
}

/**
 * The job, or null when the transfer is not to be received. A waiting one is not: only its retry
 * (server/receive-retries.ts) starts it, once it has moved it back to receiving.
 */
export function receiveJobFor(t: TransferRecord | undefined, facts: JobFacts): ReceiveJob | null {
  if (!t || !['uploading', 'receiving', 'verifying'].includes(t.state)) return null;
  return {
    id: t.id, client: t.client as SafeName, volume: t.volume as SafeName, snapshot: t.snapshot as SafeName,
    uuid: t.uuid, parentUuid: t.parentUuid, chunkSize: t.chunkSize, policy: receivePolicy(t, facts.volumeSnapshots, facts.privilegedFiles, facts.parentEntries),
    toDisk: facts.toDisk,
    // Checked again just before the snapshot takes its name: two uploads of one UUID into two volumes at once.
    confirm: facts.confirm,
    othersNames: facts.othersNames,
  };
}
