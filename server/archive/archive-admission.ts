/**
 * Whether a new archive upload may begin, and its record: the tus creation request's way in, as
 * server/transfers/admission.ts is a btrfs server's. Its metadata is parsed as a btrfs server parses it, the chain
 * rule applied (chains.ts): an incremental needs its parent in the archive, and a parent whose chain is full takes
 * none; the client's rate and open uploads are counted across instances (client-uploads.ts). How a stream is sealed
 * is known only from its frame 0, so an incremental's sealing is held to its parent's there (firstFrame), and so is
 * whether its parent changed on the client since it was sent.
 */
import { SnapferryError } from '../../core/errors.ts';
import type { SafeName } from '../../core/names.ts';
import type { UploadLimits } from '../upload-limits.ts';
import { parseCreation, type CreationMetadata } from '../transfers/creation.ts';
import type { ObjectStore } from './object-store.ts';
import { admitUpload, withdrawUpload } from './client-uploads.ts';
import { mayExtend, type ChainRules } from './chains.ts';
import { asArchived, isLive, readCatalog, type CatalogEntry } from './volume-catalog.ts';
import { writeTransferRecord, type TransferRecord } from './archive-transfer.ts';
import type { FirstFrame } from './segment-append.ts';
import { assertSealedAsParent, type StoredSealings } from './stream-sealing.ts';
import { parentChangedInArchive } from './parent-ctransid.ts';

/** Send stream versions an archive stores: it receives nothing, so the restoring client's btrfs decides. */
export const STORED_STREAM_VERSIONS = [1, 2];

export interface ArchiveAdmissionDeps {
  objects: ObjectStore;
  rules: ChainRules;
  limits: Readonly<UploadLimits>;
  sealings: StoredSealings;
}

export class ArchiveAdmission {
  constructor(private readonly deps: ArchiveAdmissionDeps) {}

  /** Validates a new upload's metadata and writes its transfer record, or throws why it may not begin. */
  async begin(client: SafeName, id: string, metadata: CreationMetadata): Promise<TransferRecord> {
    const { objects, rules, limits } = this.deps;
    const c = parseCreation(metadata, { receiveStreamVersions: STORED_STREAM_VERSIONS, progs: null });
    const streams = await readCatalog(objects, client, c.volume);
    const present = streams.find((s) => s.uuid === c.uuid);
    if (present) {
      const why = isLive(present) ? '' : ' (its chain is being deleted by the retention policy: push it again once that is done)';
      throw new SnapferryError('snapshot_present', `the archive already holds ${c.volume}/${c.snapshot}${why}`, { details: { volume: c.volume, uuid: c.uuid } });
    }
    if (c.parentUuid !== null) {
      assertParent(streams, c);
      const extend = mayExtend(asArchived(streams.filter(isLive)), c.parentUuid, new Date(), rules);
      if (!extend.ok) {
        throw new SnapferryError('chain_full', `${c.snapshot} cannot be stored as an incremental: ${extend.reason}; push it in full (the client's planner does when it reads the snapshot list again)`, {
          details: { volume: c.volume, parentUuid: c.parentUuid },
        });
      }
    }
    // The client's rate and open uploads, across instances (client-uploads.ts); its bytes are the quota wrapper's.
    await admitUpload(objects, client, id, limits);
    const record = await writeTransferRecord(objects, client, id, c, new Date().toISOString()).catch(async (err: unknown) => {
      await withdrawUpload(objects, client, id).catch(() => undefined);
      throw err;
    });
    // Read again after the record is in the bucket: retention marks a chain, then lists uploads (archive-retention.ts),
    // so either it finds this record and keeps the parent's chain, or this read finds the mark. The record left by a
    // refusal here has no state.json and goes with the sweep of abandoned uploads (upload-sweep.ts).
    if (c.parentUuid !== null) assertParent(await readCatalog(objects, client, c.volume), c);
    return record;
  }

  /**
   * An incremental's frame 0, refused before any of it is stored unless it is sealed as its parent's stream is
   * (stream-sealing.ts: the client's planner already keeps to this; this holds a client that does not, an older one),
   * and its parent is as it was sent (parent-ctransid.ts: `parent_changed`, as a btrfs server refuses it at frame 0,
   * server/ingest.ts). Either refusal is final: the upload ends failed with it (SegmentUploads), and push, which
   * reads a parent_changed from the failed transfer, goes around that parent.
   */
  async firstFrame(record: TransferRecord, first: FirstFrame): Promise<void> {
    if (record.parentUuid === null) return;
    const streams = await readCatalog(this.deps.objects, record.client as SafeName, record.volume as SafeName);
    const parent = streams.find((s) => s.uuid === record.parentUuid && isLive(s));
    // Gone since the upload began (retention took its chain): nothing to hold it to, and the chain rule's to answer.
    if (parent === undefined) return;
    assertSealedAsParent(
      { volume: record.volume, snapshot: record.snapshot, sealing: first.sealedBy },
      { name: parent.name, sealing: await this.deps.sealings.of(parent) },
    );
    const changed = parentChangedInArchive(record, first, parent);
    if (changed) throw changed;
  }
}

/** An incremental's parent must be a live stream of the archive (not one whose chain retention is taking out). */
function assertParent(streams: readonly CatalogEntry[], c: { volume: string; snapshot: string; parentUuid: string | null }): void {
  if (streams.some((s) => s.uuid === c.parentUuid && isLive(s))) return;
  throw new SnapferryError('parent_missing', `the archive holds no snapshot ${c.parentUuid} in ${c.volume} to store ${c.snapshot} as an incremental on; push it in full`, {
    details: { volume: c.volume, parentUuid: c.parentUuid },
  });
}
