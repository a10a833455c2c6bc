/**
 * The Received UUID a client's snapshot gets on the server's disk (server/uuid-namespace.ts says why UUIDs are
 * namespaced per client). Here because both sides compute it: the server to write it, and a client to know its own
 * snapshot again in a listing whose UUID the server no longer knows (`Snapshot.uuidUnknown`: a snapshot the server
 * adopted from the disk when its catalog was rebuilt, of which only the namespaced UUID is left, and a v5 UUID cannot
 * be computed back).
 */
import crypto from 'node:crypto';

/** Fixed for ever: every namespaced Received UUID on every server is derived from it. */
export const SNAPFERRY_UUID_NAMESPACE = '00dbbc7b-956c-4286-a4b2-a2a5d20b844b';

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

/**
 * A listing as `client` knows it: each snapshot whose UUID the server lost (`uuidUnknown`, listed with its
 * namespaced UUID) and that is one of `candidates` (the client's own UUIDs) gets that UUID back, so that matching by
 * UUID finds it. One no candidate explains stays as listed, flagged: it matches none of the client's UUIDs.
 */
export function withClientUuids<S extends { uuid: string; uuidUnknown?: true | undefined }>(listed: readonly S[], client: string | undefined, candidates: Iterable<string>): S[] {
  if (client === undefined || !listed.some((s) => s.uuidUnknown)) return [...listed];
  const byDisk = new Map([...candidates].map((u) => [namespacedUuid(client, u), u]));
  return listed.map((s) => {
    const own = s.uuidUnknown ? byDisk.get(s.uuid) : undefined;
    if (own === undefined) return s;
    const { uuidUnknown: _u, ...known } = s;
    return { ...known, uuid: own } as S;
  });
}
