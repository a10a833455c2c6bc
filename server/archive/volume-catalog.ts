/**
 * The archive's catalog of one volume, `catalog/CLIENT/VOLUME.json` (docs/archive.md, "The catalog"): the streams
 * stored for it, each pointing at its write-once manifest. Changed only by compare-and-swap (json-object.ts), with
 * pure, idempotent changes: recording a stream sets its entry by UUID, so a change applied twice (a swap whose
 * answer was lost, redone) is the same catalog.
 */
import { z } from 'zod';
import type { SafeName } from '../../core/names.ts';
import type { ObjectStore } from './object-store.ts';
import { readJson, updateJson } from './json-object.ts';
import type { ArchivedStream } from './chains.ts';
import type { Snapshot } from '../../core/protocol.ts';
import type { Sealing } from '../../core/sealing.ts';

export const CATALOG_VERSION = 1 as const;

export const CatalogEntry = z.strictObject({
  name: z.string(),
  uuid: z.string(),
  parentUuid: z.string().nullable(),
  transferId: z.string(),
  chunkSize: z.number().int().positive(),
  rawBytes: z.number().int().nonnegative(),
  wireBytes: z.number().int().nonnegative(),
  /** When the stream was stored (the catalog swap's instance clock): a chain's age counts from its full's. */
  storedAt: z.string(),
  createdAt: z.string().nullable(),
  takenAt: z.string().nullable(),
  /** The stream's manifest (manifest.ts), relative to the archive's prefix. */
  manifest: z.string(),
  /**
   * How the stream's frames are sealed (core/sealing.ts): the key id, hex, or null for plain frames; read from its
   * first frame when it was stored (stream-sealing.ts). Absent from entries stored before it was recorded, whose
   * stream is read for it when asked (StoredSealings).
   */
  sealedBy: z.string().regex(/^[0-9a-f]{16}$/).nullable().optional(),
  /**
   * The ctransid the snapshot was sent at (parent-ctransid.ts): a plain stream's first command, read from its stored
   * frame 0, or a sealed stream's as its client declared it. An incremental on this stream whose parent's ctransid is
   * another now is refused (`parent_changed`). Null where neither says (an older client's sealed stream); absent from
   * entries stored before it was recorded. Either way nothing is compared.
   */
  ctransid: z.number().int().nonnegative().nullable().optional(),
  /**
   * Set when retention takes the stream's chain out (archive-retention.ts): `marked`, then `deleting` once no upload
   * in progress was found on it, and only then are its objects deleted. Views, parents and restores pass over a
   * stream in either state from the swap that set it on.
   */
  retention: z.strictObject({ state: z.enum(['marked', 'deleting']), at: z.string() }).optional(),
});
export type CatalogEntry = z.infer<typeof CatalogEntry>;

/** A stream retention deleted, remembered for a while so that nothing records it again (recordStream). */
export const RetiredStream = z.strictObject({ name: z.string(), uuid: z.string(), transferId: z.string(), at: z.string() });
export type RetiredStream = z.infer<typeof RetiredStream>;

export const VolumeCatalog = z.strictObject({
  version: z.literal(CATALOG_VERSION),
  streams: z.array(CatalogEntry),
  /** Absent in catalogs no retention has touched. */
  retired: z.array(RetiredStream).optional(),
});
export type VolumeCatalog = z.infer<typeof VolumeCatalog>;

export const CATALOG_FOLDER = 'catalog/';

export function catalogKey(client: SafeName, volume: SafeName): string {
  return `${CATALOG_FOLDER}${client}/${volume}.json`;
}

/** The volume's streams, in the order they were stored; none when the volume has no catalog yet. */
export async function readCatalog(store: ObjectStore, client: SafeName, volume: SafeName): Promise<CatalogEntry[]> {
  return (await readVolume(store, client, volume)).streams;
}

/** The volume's catalog whole (streams, and those retention deleted this last week); empty when there is none. */
export async function readVolume(store: ObjectStore, client: SafeName, volume: SafeName): Promise<VolumeCatalog> {
  return (await readJson(store, catalogKey(client, volume), VolumeCatalog))?.value ?? { version: CATALOG_VERSION, streams: [] };
}

/** Whether the stream is one views, parents and restores may use: not in a chain retention is deleting. */
export const isLive = (e: CatalogEntry): boolean => e.retention === undefined;

/**
 * Records a stored stream (after its manifest is written); the same entry again changes nothing, and neither does
 * an upload retention has deleted: an instance that found it complete and uncatalogued just before the deletion
 * (ArchiveViews.transfer) would otherwise record a stream whose segments are gone. Returns whether it is recorded.
 */
export async function recordStream(store: ObjectStore, client: SafeName, volume: SafeName, entry: CatalogEntry): Promise<boolean> {
  const written = await updateJson(store, catalogKey(client, volume), VolumeCatalog, (old) => {
    const streams = old?.streams ?? [];
    if (streams.some((s) => s.uuid === entry.uuid) || old?.retired?.some((r) => r.transferId === entry.transferId)) return old ?? { version: CATALOG_VERSION, streams };
    return { ...old, version: CATALOG_VERSION, streams: [...streams, entry] };
  });
  return written.value.streams.some((s) => s.transferId === entry.transferId && isLive(s));
}

/** The volumes of one client that have a catalog. */
export async function catalogVolumes(store: ObjectStore, client: SafeName): Promise<string[]> {
  const folder = `${CATALOG_FOLDER}${client}/`;
  const names: string[] = [];
  for await (const o of store.list(folder)) {
    const m = /^([^/]+)\.json$/.exec(o.key.slice(folder.length));
    if (m) names.push(m[1]!);
  }
  return names.sort();
}

/** The entries as chains.ts reads them (the caller leaves out those that are not live when it must). */
export function asArchived(entries: readonly CatalogEntry[]): ArchivedStream[] {
  return entries.map((e) => ({
    uuid: e.uuid, name: e.name, parentUuid: e.parentUuid, storedAt: new Date(e.storedAt), time: new Date(e.takenAt ?? e.createdAt ?? e.storedAt),
  }));
}

/**
 * A stored stream as the API lists a snapshot. `sealedBy`: its sealing (StoredSealings, for an entry that has none
 * recorded), undefined when not known; by default the recorded one.
 */
export function snapshotView(s: CatalogEntry, extendable: boolean, now: Date, sealedBy: Sealing | undefined = s.sealedBy): Snapshot {
  return {
    name: s.name, uuid: s.uuid, serverUuid: s.uuid, parentUuid: s.parentUuid, receivedAt: s.storedAt, rawBytes: s.rawBytes, wireBytes: s.wireBytes,
    transferId: s.transferId, createdAt: s.createdAt, takenAt: s.takenAt,
    // A snapshot whose chain is full is passed over as a parent by the client's planner (core/plan.ts), as one
    // changed by hand is: it then sends a full, which begins a new chain.
    altered: extendable ? null : { foundAt: now.toISOString(), what: ['chain_full'] },
    // Served only on the parent it was pushed on (archive-restore.ts): the client restores its chain in order.
    storedStream: true,
    // Only a push sealed the same way takes it as a parent (core/plan.ts), so that no chain mixes sealings.
    ...(sealedBy !== undefined ? { sealedBy } : {}),
  };
}
