/**
 * Each client's UUIDs live in a namespace of their own on the server's filesystem (issue 17). `btrfs receive` finds
 * parents and clone sources by Received UUID across the whole filesystem, and records the stream's UUID as the new
 * subvolume's Received UUID; were a client's UUIDs handed to it as they are, a client could name another client's
 * subvolume as its parent or clone source, and the server would have to refuse a UUID another client holds (which
 * says that it exists). So no client UUID reaches `btrfs receive` raw: the stream is rewritten on the way in
 * (core/wire/sendstream-uuids.ts) through `toDisk`, and back on the way out of a restore through `toClient`.
 *
 * toDisk(client, u): the Received UUID on disk of the client's own snapshot whose UUID is u, when its catalog holds
 * one; otherwise a UUIDv5 (RFC 9562 5.5) of (SNAPFERRY_UUID_NAMESPACE, "<client>/<u>"). A snapshot received before
 * namespacing has no `receivedUuid` in the catalog and its raw UUID on disk, and the first rule keeps it working.
 * Another client's subvolume is out of reach: its Received UUID is a v5 of another name (finding a preimage of
 * SHA-1 under a fixed prefix is out of reach) or, from before namespacing, a raw UUID that only its own client's
 * catalog maps to.
 *
 * A snapshot adopted from the disk without its transfer (the catalog was lost and rebuilt, server/reconcile.ts) has
 * only its Received UUID left, and a v5 UUID cannot be computed back to the client's: its record says so
 * (`uuidUnknown`, with `uuid` holding the Received UUID, which matches no client UUID). It is the client's UUID u
 * when namespacedUuid(client, u) is its Received UUID, and the catalog learns u the first time the client names it
 * (Catalog.learnUuids: a creation's uuid and parent, a restore's parent, a saved digest's file name); a client
 * knows it in a listing the same way (core/uuid-namespace.ts withClientUuids). toDisk needs nothing of it: the
 * namespaced UUID is what the second rule gives for u, and the first for the Received UUID itself (what a client
 * that restored the snapshot before u was learnt holds it as). Until then a restore of it carries the Received UUID.
 */
import type { SendUuidMap } from '../core/wire/index.ts';
import { namespacedUuid } from '../core/uuid-namespace.ts';

export { SNAPFERRY_UUID_NAMESPACE, namespacedUuid, uuidV5 } from '../core/uuid-namespace.ts';

/** What the maps need of the catalog: one client's snapshots. */
export interface NamespacedSnapshots {
  snapshots(client: string): readonly { uuid: string; receivedUuid?: string | undefined }[];
}

/** The Received UUID on disk of a catalogued snapshot. */
export function receivedUuidOf(snapshot: { uuid: string; receivedUuid?: string | undefined }): string {
  return snapshot.receivedUuid ?? snapshot.uuid;
}

/**
 * toDisk for one stream of `client`: the catalog is read once per UUID (a stream may name its clone sources many
 * times). A stream's own UUID is not in the catalog until the stream is received, so it maps the same way throughout.
 */
export function toDiskMap(catalog: NamespacedSnapshots, client: string): SendUuidMap {
  const seen = new Map<string, string>();
  return (uuid) => {
    let disk = seen.get(uuid);
    if (disk === undefined) {
      const held = catalog.snapshots(client).find((s) => s.uuid === uuid);
      disk = held ? receivedUuidOf(held) : namespacedUuid(client, uuid);
      seen.set(uuid, disk);
    }
    return disk;
  };
}

/**
 * toClient for `client`'s restores: a Received UUID on disk back to the client's UUID, over the client's catalog
 * only. A UUID it does not know passes unchanged (a subvolume's own UUID, which the client's receive does not use);
 * so does the Received UUID of a snapshot whose client UUID the catalog has not learnt yet (`uuidUnknown`).
 */
export function toClientMap(catalog: NamespacedSnapshots, client: string): SendUuidMap {
  const back = new Map(catalog.snapshots(client).map((s) => [receivedUuidOf(s), s.uuid]));
  return (uuid) => back.get(uuid) ?? uuid;
}
