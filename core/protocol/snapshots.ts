/** The server's catalog as clients read it: volumes, their received snapshots, and what was removed or changed by hand. */
import { z } from 'zod';

/**
 * What was changed by hand on a received snapshot (found when the server starts, or when a push names it as parent):
 * `not_read_only` (`btrfs property set ro false`), `received_uuid_lost` (that command with -f clears it, and nothing
 * but a receive can set it again), `changed_since_received` (its ctransid moved on since its receive: something in it
 * was changed, even with its flags and Received UUID put back, or kept by the SUBVOL_SETFLAGS ioctl). Its content may
 * no longer be what the client sent, so it is never a parent.
 * `chain_full` (archive mode, server/archive/chains.ts): the snapshot's chain takes no more incrementals (fullEvery),
 * so it is passed over as a parent the same way and the client sends a full instead.
 */
export const alterations = ['not_read_only', 'received_uuid_lost', 'changed_since_received', 'chain_full'] as const;
export type Alteration = (typeof alterations)[number];

export const SnapshotAltered = z.object({
  /** When the server first found it so. */
  foundAt: z.string(),
  what: z.array(z.enum(alterations)),
});
export type SnapshotAltered = z.infer<typeof SnapshotAltered>;

export const Snapshot = z.object({
  name: z.string(),
  /** The client snapshot's UUID, which is the received subvolume's Received UUID on the server. */
  uuid: z.string(),
  /**
   * True where the server no longer knows the client's UUID (it rebuilt its catalog from the disk, where only the
   * Received UUID in the client's namespace is left): `uuid` is then that Received UUID, namespacedUuid(client, the
   * client's UUID) (core/uuid-namespace.ts), which a client matches with withClientUuids. Absent otherwise.
   */
  uuidUnknown: z.literal(true).optional(),
  /** The received subvolume's own UUID on the server. */
  serverUuid: z.string(),
  parentUuid: z.string().nullable(),
  receivedAt: z.string(),
  rawBytes: z.number(),
  wireBytes: z.number(),
  transferId: z.string().nullable(),
  /** The client snapshot's btrfs Creation time (META.createdAt); null where unknown (catalogued before it was sent). */
  createdAt: z.string().nullish(),
  /**
   * When it was taken (META.takenAt): what retention and "newest" count. Null for snapshots catalogued before
   * clients sent it: the server then dates them by their name, else by their arrival (server/snapshot-time.ts).
   */
  takenAt: z.string().nullish(),
  /**
   * Null, or how the snapshot was changed by hand on the server since it was received (SnapshotAltered). Such a
   * snapshot stays listed (it may still be worth restoring) but is never the parent of an incremental: the server
   * refuses one (409 parent_altered) and the client's planner passes it over.
   */
  altered: SnapshotAltered.nullable().default(null),
  /**
   * True where the server holds the snapshot as the stream that was pushed, not as a tree it can send from any
   * parent (archive mode, docs/archive.md): a restore of it is served only on `parentUuid`, so a client that holds
   * none of its chain restores the chain's path first, its full then each incremental (client/restore/plan.ts).
   * Absent from a btrfs server.
   */
  storedStream: z.boolean().optional(),
  /**
   * How the stored stream's frames are sealed (archive mode, core/sealing.ts): the id (hex) of the key they are sealed
   * under (client-side encryption), or null for plain frames. A client's planner takes as a parent only a snapshot
   * sealed as its push is, so that no chain mixes the two and every chain restores with one config. Absent from a
   * btrfs server (all it holds is plain) and from archives older than this field.
   */
  sealedBy: z.string().regex(/^[0-9a-f]{16}$/).nullable().optional(),
});
export type Snapshot = z.infer<typeof Snapshot>;

/**
 * Whether `rawBytes` and `wireBytes` are the sizes of the stream the snapshot was pushed as. A snapshot the server
 * adopted from its disk without that transfer's record (its catalog rebuilt: server/reconcile.ts) has neither a
 * transfer nor sizes, recorded as 0: no send stream is 0 bytes long (a header and an end command at least), so a 0
 * there means unknown, never empty.
 */
export function pushedSizeKnown(s: Pick<Snapshot, 'rawBytes' | 'transferId'>): boolean {
  return s.transferId !== null || s.rawBytes > 0;
}

/** A snapshot the catalog once held that is gone from disk (an admin deleted it); kept so clients can say so. */
export const RemovedSnapshot = z.object({
  name: z.string(),
  uuid: z.string(),
  removedAt: z.string(),
  reason: z.string(),
});
export type RemovedSnapshot = z.infer<typeof RemovedSnapshot>;

export const SnapshotList = z.object({
  volume: z.string(),
  /** Whose snapshots: the name a snapshot's `uuidUnknown` UUID is namespaced under. Absent from older servers. */
  client: z.string().optional(),
  snapshots: z.array(Snapshot),
  removed: z.array(RemovedSnapshot),
  /**
   * The largest PATCH body this server takes best, for a push that reads this list before it sends: each request
   * costs a server of its own (on btrfs an fsync; in archive mode a stored segment and its record), against what a
   * large one costs both sides in memory and garbage collection. Absent from older servers.
   */
  patchBytes: z.number().int().positive().optional(),
});
export type SnapshotList = z.infer<typeof SnapshotList>;

export const Volume = z.object({
  /** Whose volume: in an admin's listing only (a client's are all its own). */
  client: z.string().optional(),
  name: z.string(),
  snapshots: z.number(),
  newest: Snapshot.nullable(),
  rawBytes: z.number(),
  /** Names of the volume's snapshots changed by hand on the server (Snapshot.altered): never used as parents. */
  altered: z.array(z.string()).default([]),
  /**
   * Names of the volume's snapshots whose size the server does not know (pushedSizeKnown): `rawBytes` counts each as
   * 0, so it is the volume's size only where this is empty. Absent from older servers.
   */
  sizeUnknown: z.array(z.string()).default([]),
});
export type Volume = z.infer<typeof Volume>;

export const VolumeList = z.object({ client: z.string(), volumes: z.array(Volume) });
export type VolumeList = z.infer<typeof VolumeList>;
