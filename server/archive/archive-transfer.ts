/**
 * An archive upload's transfer record, `uploads/ID/transfer.json`: who pushes which snapshot of which volume, written
 * once when the upload is created (before state.json, so that an upload in the bucket always has an owner), and the
 * Transfer the API shows of it, put together from it, the upload's state.json and the volume's catalog.
 */
import { z } from 'zod';
import type { SafeName } from '../../core/names.ts';
import { SendStreamName, Transfer, type FrameRecord, type TransferState } from '../../core/protocol.ts';
import { SnapferryError } from '../../core/errors.ts';
import type { Creation } from '../transfers/creation.ts';
import type { ObjectStore } from './object-store.ts';
import { encodeJson, readJson } from './json-object.ts';
import { parseState, progressOf, stateKey, uploadEnd, uploadFolder, type UploadState } from './upload-state.ts';
import type { CatalogEntry } from './volume-catalog.ts';

/**
 * Fields that mean and look the same in a Transfer are core's (Transfer.pick). The record's own rules are stricter
 * where it is written whole, once, by this version: core's Transfer takes answers and catalogs from before a key existed
 * (sendStream defaults to 'v1', the snapshot times may be absent), a record never lacks one. sendStream is core's
 * enum itself, so a way of sending that core learns is one a record can hold (a copy of its values would refuse it,
 * and every request on the upload would fail as archive_object_corrupt).
 */
export const TransferRecord = z.strictObject({
  ...Transfer.pick({ id: true, client: true, volume: true, snapshot: true, uuid: true, parentUuid: true, createdAt: true, rawEstimate: true }).shape,
  chunkSize: z.number().int().positive(),
  sendStream: SendStreamName,
  snapshotCreatedAt: z.string().nullable(),
  snapshotTakenAt: z.string().nullable(),
  /** The client's parent is a received copy (META.parentReceived): its ctransid is no evidence (parent-ctransid.ts). */
  parentReceived: z.boolean().optional(),
  /**
   * The ctransids the client declared for the stream's first command (META.ctransid, META.parentCtransid), null where
   * it declared none; absent from records written before they were kept. What the archive goes by for a sealed stream.
   */
  ctransid: z.number().int().nonnegative().nullable().optional(),
  parentCtransid: z.number().int().nonnegative().nullable().optional(),
});
export type TransferRecord = z.infer<typeof TransferRecord>;

export const transferKey = (id: string): string => `${uploadFolder(id)}transfer.json`;

export async function writeTransferRecord(store: ObjectStore, client: SafeName, id: string, c: Creation, now: string): Promise<TransferRecord> {
  const record: TransferRecord = {
    id, client, volume: c.volume, snapshot: c.snapshot, uuid: c.uuid, parentUuid: c.parentUuid, chunkSize: c.chunkSize, sendStream: c.sendStream,
    rawEstimate: c.rawEstimate, createdAt: now, snapshotCreatedAt: c.createdAt, snapshotTakenAt: c.takenAt,
    ...(c.parentReceived ? { parentReceived: true } : {}), ctransid: c.ctransid, parentCtransid: c.parentCtransid,
  };
  if ((await store.putIfAbsent(transferKey(id), encodeJson(record))) === null) {
    throw new SnapferryError('upload_exists', `upload ${id} already exists in the archive`, { details: { transferId: id } });
  }
  return record;
}

/**
 * The upload's record, or null when it has none. One that cannot be read stops every request on the upload (500):
 * it says whose the upload is, and a listing that left it out would tell the client the upload is gone, and the
 * client would send the whole stream again. So it is an error that says what to do, and nothing of the upload is
 * touched: its state and segments stay, and once the record is back the push resumes where the bucket stands.
 */
export async function readTransferRecord(store: ObjectStore, id: string): Promise<TransferRecord | null> {
  try {
    return (await readJson(store, transferKey(id), TransferRecord))?.value ?? null;
  } catch (err) {
    if (!(err instanceof SnapferryError) || err.code !== 'archive_object_corrupt') throw err;
    throw new SnapferryError('archive_object_corrupt',
      `upload ${id}'s record in the archive (${transferKey(id)}) ${String(err.details.why ?? 'cannot be read')}; its state and segments are kept: put the ` +
        "record back from the bucket's versions and the push resumes where it stopped, or delete the upload's folder and push the snapshot again",
      { cause: err, details: { ...err.details, transferId: id } });
  }
}

export async function readUploadState(store: ObjectStore, id: string): Promise<UploadState | null> {
  const got = await store.get(stateKey(id));
  return got === null ? null : parseState(id, got.body);
}

/**
 * Where the transfer stands: received once the catalog names it; aborted or failed once its upload is a tombstone
 * (as upload-state.ts uploadEnd reads it); `receiving` between its end frame and the catalog's swap (the moment the
 * manifest and the catalog are written); else uploading.
 */
export function transferState(state: UploadState | null, stored: CatalogEntry | undefined): TransferState {
  if (stored) return 'received';
  const ended = state && uploadEnd(state);
  if (ended) return ended.state;
  if (state && progressOf(state).complete) return 'receiving';
  return 'uploading';
}

export function transferView(record: TransferRecord, state: UploadState | null, stored: CatalogEntry | undefined, arrived: number): Transfer {
  const p = state ? progressOf(state) : null;
  const now = transferState(state, stored);
  return {
    id: record.id, client: record.client, volume: record.volume, snapshot: record.snapshot, uuid: record.uuid, parentUuid: record.parentUuid,
    state: now, createdAt: record.createdAt, updatedAt: state?.touchedAt ?? record.createdAt, chunkSize: record.chunkSize,
    wireOffset: p?.wireOffset ?? 0, framesVerified: p?.framesVerified ?? 0, rawBytes: p?.rawBytes ?? 0, rawEstimate: record.rawEstimate,
    chain: (p?.chain ?? Buffer.alloc(32)).toString('hex'),
    error: (state && uploadEnd(state)?.error) ?? null,
    lastInterruption: null, interruptions: 0, sendStream: record.sendStream,
    // Nothing is received on the archive: the stored raw bytes stand for it once the stream is complete.
    rawReceived: now === 'received' ? (p?.rawBytes ?? 0) : 0,
    // The bucket keeps no part of a frame (segment-append.ts); what a request under way has brought of one only the
    // instance taking it knows: not counted here.
    wireHeld: p?.wireOffset ?? 0,
    wireArrived: arrived, wait: null, spoolBytes: 0, snapshotCreatedAt: record.snapshotCreatedAt, snapshotTakenAt: record.snapshotTakenAt,
  };
}

export type { FrameRecord };
