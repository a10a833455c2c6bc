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
 */
import crypto from 'node:crypto';
import type { SendUuidMap } from '../core/wire/index.ts';

/** Fixed for ever: every namespaced Received UUID on every server is derived from it. */
export const SNAPFERRY_UUID_NAMESPACE = '00dbbc7b-956c-4286-a4b2-a2a5d20b844b';

/** What the maps need of the catalog: one client's snapshots. */
export interface NamespacedSnapshots {
  snapshots(client: string): readonly { uuid: string; receivedUuid?: string | undefined }[];
}

/** UUIDv5 of `name` in `namespace`: SHA-1 of the namespace's 16 bytes and the name, version and variant bits set. */
export function uuidV5(namespace: string, name: string): string {
  const hash = crypto.createHash('sha1').update(Buffer.from(namespace.replaceAll('-', ''), 'hex')).update(name, 'utf8').digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The Received UUID a new snapshot of `client` with UUID `uuid` gets on disk. (Client names hold no `/`.) */
export function namespacedUuid(client: string, uuid: string): string {
  return uuidV5(SNAPFERRY_UUID_NAMESPACE, `${client}/${uuid.toLowerCase()}`);
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
 * only. A UUID it does not know passes unchanged (a subvolume's own UUID, which the client's receive does not use).
 */
export function toClientMap(catalog: NamespacedSnapshots, client: string): SendUuidMap {
  const back = new Map(catalog.snapshots(client).map((s) => [receivedUuidOf(s), s.uuid]));
  return (uuid) => back.get(uuid) ?? uuid;
}
