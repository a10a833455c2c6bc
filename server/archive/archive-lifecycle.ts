/**
 * The two ends of an archive upload's life, as server/transfers/lifecycle.ts is a btrfs server's: its stream stored
 * (manifest, then the volume's catalog) or the upload ended before that (tombstone). Either frees the client's
 * open-upload slot (client-uploads.ts).
 */
import { SnapferryError } from '../../core/errors.ts';
import type { SafeName } from '../../core/names.ts';
import type { Logger } from '../log.ts';
import type { ObjectStore } from './object-store.ts';
import { settle, withdrawUpload } from './client-uploads.ts';
import type { SegmentUploads } from './segment-uploads.ts';
import { readUploadState } from './archive-transfer.ts';
import { uploadFolder, type SegmentRecord } from './upload-state.ts';
import { recordStream, type CatalogEntry } from './volume-catalog.ts';
import { writeManifest, type ManifestSegment } from './manifest.ts';
import type { UploadOwners } from './upload-owners.ts';
import { readStoredSealing } from './stream-sealing.ts';
import { readStoredStart, sentCtransid } from './parent-ctransid.ts';

export interface ArchiveLifecycleDeps {
  objects: ObjectStore;
  log: Logger;
  owners: UploadOwners;
  uploads: SegmentUploads;
  /** A volume of which a stream was stored: its retention runs, in the background (archive-upkeep.ts pruneLater). */
  stored(client: SafeName, volume: SafeName): void;
}

export class ArchiveLifecycle {
  constructor(private readonly deps: ArchiveLifecycleDeps) {}

  /**
   * The stream is complete: its manifest (write-once), then its entry in the volume's catalog (CAS). Either may have
   * been done by an earlier try; both are idempotent, so a transfer found complete and not catalogued is finished
   * again (ArchiveViews.transfer).
   */
  async finish(id: string, segments: readonly SegmentRecord[]): Promise<CatalogEntry | undefined> {
    const { objects, log, owners } = this.deps;
    const record = await owners.record(id);
    const end = segments.at(-1)!;
    const manifestSegments: ManifestSegment[] = segments.map((s) => ({
      key: `${uploadFolder(id)}${s.name}`, first: s.first, last: s.last, wireStart: s.wireStart, wireEnd: s.wireEnd, rawEnd: s.rawEnd, chain: s.chain, end: s.end,
    }));
    const manifest = await writeManifest(objects, {
      version: 1, client: record.client, volume: record.volume, snapshot: record.snapshot, uuid: record.uuid, parentUuid: record.parentUuid,
      transferId: id, chunkSize: record.chunkSize, frames: end.last, wireBytes: end.wireEnd, rawBytes: end.rawEnd, chain: end.chain, segments: manifestSegments,
    });
    // From the stored frames, not from what the client said: what a restore will have to open.
    const sealedBy = await readStoredSealing(objects, manifestSegments[0]!);
    // So is the ctransid it was sent at, where the frames can be read (plain); a sealed stream's is the client's word.
    const start = sealedBy === null ? await readStoredStart(objects, manifestSegments[0]!, record.chunkSize) : null;
    const entry: CatalogEntry = {
      name: record.snapshot, uuid: record.uuid, parentUuid: record.parentUuid, transferId: id, chunkSize: record.chunkSize,
      rawBytes: end.rawEnd, wireBytes: end.wireEnd, storedAt: new Date().toISOString(), createdAt: record.snapshotCreatedAt,
      takenAt: record.snapshotTakenAt, manifest, sealedBy, ctransid: sentCtransid(record, sealedBy, start),
    };
    // Not recorded: retention deleted this upload's stream after this instance read it complete (archive-retention.ts).
    if (!(await recordStream(objects, record.client as SafeName, record.volume as SafeName, entry))) return undefined;
    // Its open-upload slot is free now; a later look would free it too (client-uploads.ts settle).
    await settle(objects, record.client as SafeName).catch(() => undefined);
    log.info({ transferId: id, volume: record.volume, snapshot: record.snapshot, wireBytes: end.wireEnd }, 'stream stored in the archive');
    // As a btrfs server prunes after each receive.
    this.deps.stored(record.client as SafeName, record.volume as SafeName);
    return entry;
  }

  /**
   * Terminates an upload (its state a tombstone, its segments gone) and frees its client's slot. `refusal`: the
   * server's, which ended it (SegmentUploads.remove): its transfer fails with it instead of being aborted.
   */
  async end(id: string, refusal?: SnapferryError): Promise<void> {
    const { objects, owners, uploads } = this.deps;
    const client = (await owners.record(id)).client as SafeName;
    try {
      await uploads.remove(id, refusal);
    } catch (err) {
      if (!(err instanceof SnapferryError && err.code === 'not_found')) throw err;
      const state = await readUploadState(objects, id);
      // Refused at its creation (a declared length over the quota) before its state.json was written: no upload to
      // end, only its entry to drop.
      if (state === null) {
        await withdrawUpload(objects, client, id);
        return;
      }
      // Ended already (a stream refused for good at frame 0 is ended there, SegmentUploads): only its slot to free.
      if (state.tombstone === null) throw err;
    }
    await settle(objects, client).catch(() => undefined);
  }
}
