/**
 * What GET /v1/status counts and /metrics shows of an archive's clients, read from the bucket at the time of asking,
 * so that every instance answers the same (docs/archive.md, "Limits, status and metrics"): the volumes' catalogs
 * (stored streams: the transfers `received`), each client's uploads index (client-uploads.ts: the uploads open now,
 * and how many were aborted or failed). Nothing here is per instance but the bytes that reached this instance
 * (`wireArrived`, which a btrfs server counts in memory too).
 */
import type { SafeName } from '../../core/names.ts';
import type { SnapshotRecord, TransferRecord as CatalogTransfer } from '../catalog.ts';
import type { ClientFacts } from '../views.ts';
import type { ObjectStore } from './object-store.ts';
import { CLIENTS_FOLDER, failedByCode, settle } from './client-uploads.ts';
import { asArchived, CATALOG_FOLDER, catalogVolumes, readCatalog, snapshotView, type CatalogEntry } from './volume-catalog.ts';
import { mayExtend, type ChainRules } from './chains.ts';
import { readTransferRecord, readUploadState, transferView } from './archive-transfer.ts';

/** Every client the bucket knows of: by a volume's catalog or by its uploads index (two short listings). */
export async function archiveClients(objects: ObjectStore): Promise<string[]> {
  const names = new Set<string>();
  for (const folder of [CATALOG_FOLDER, CLIENTS_FOLDER]) {
    for await (const o of objects.list(folder)) {
      const name = o.key.slice(folder.length).split('/')[0];
      if (name) names.add(name);
    }
  }
  return [...names].sort();
}

/**
 * The client's transfers by state as its uploads index has them, for GET /v1/status; `received` is left to the
 * caller, which reads the volumes' catalogs anyway (each stored stream is one).
 */
export async function uploadCounts(objects: ObjectStore, client: SafeName): Promise<Record<'uploading' | 'received' | 'aborted' | 'failed', number>> {
  const { open, ended } = await settle(objects, client);
  return { uploading: open.length, received: 0, aborted: ended.aborted, failed: ended.failed };
}

/**
 * What /metrics counts of one client: its stored streams as snapshots and as received transfers, its open uploads
 * with the bytes they hold in the bucket (a btrfs server's spool bytes), and the aborted and failed ones by count,
 * the failed by code (the archive keeps no record of each beyond its tombstone).
 */
export async function archiveFacts(objects: ObjectStore, client: SafeName, rules: ChainRules, arrived: (id: string) => number): Promise<ClientFacts> {
  const now = new Date();
  const volumes: ClientFacts['volumes'] = [];
  const transfers: ClientFacts['transfers'] = [];
  for (const volume of await catalogVolumes(objects, client)) {
    const streams = await readCatalog(objects, client, volume as SafeName);
    const archived = asArchived(streams);
    volumes.push({ name: volume, snapshots: streams.map((s): SnapshotRecord => ({ ...snapshotView(s, mayExtend(archived, s.uuid, now, rules).ok, now), client, volume })) });
    for (const s of streams) transfers.push({ record: receivedRecord(client, volume, s), wireBytes: s.wireBytes, spoolBytes: 0, rawReceived: s.rawBytes });
  }
  const { open, ended } = await settle(objects, client);
  for (const u of open) {
    const record = await readTransferRecord(objects, u.id);
    // An entry whose creation is still under way has no record yet: nothing to show of it.
    if (record === null) continue;
    const { wireOffset, framesVerified, rawBytes, chain: _c, rawReceived: _r, wireArrived: _w, wireHeld: _h, spoolBytes: _s, ...rest } =
      transferView(record, await readUploadState(objects, u.id), undefined, arrived(u.id));
    transfers.push({ record: { ...rest, wireBytes: wireOffset, framesVerified, rawBytes }, wireBytes: wireOffset, spoolBytes: u.bytes, rawReceived: 0 });
  }
  return { volumes, transfers, orphanedSpools: [], unlisted: { aborted: ended.aborted, failedByCode: failedByCode(ended) } };
}

/** A stored stream as the transfer that stored it (its catalog entry has all /metrics reads of it). */
function receivedRecord(client: string, volume: string, s: CatalogEntry): CatalogTransfer {
  return {
    id: s.transferId, client, volume, snapshot: s.name, uuid: s.uuid, parentUuid: s.parentUuid, state: 'received',
    createdAt: s.storedAt, updatedAt: s.storedAt, chunkSize: s.chunkSize, rawEstimate: null, error: null, lastInterruption: null,
    interruptions: 0, sendStream: 'v1', wait: null, wireBytes: s.wireBytes, rawBytes: s.rawBytes, framesVerified: null,
    snapshotCreatedAt: s.createdAt, snapshotTakenAt: s.takenAt,
  };
}
