/**
 * Archive mode's core (docs/archive.md): what server/app.ts asks of a server (server/app-service.ts), over a bucket
 * instead of a btrfs root, as one facade over its parts as server/replication.ts is a btrfs server's. Uploads go
 * through the tus adapter into the uploads in the bucket (archive-upload-path.ts); a new one is admitted by
 * archive-admission.ts; when an upload's end frame is stored, archive-lifecycle.ts writes its manifest once and
 * records it in the volume's catalog by compare-and-swap; the views read the catalog (archive-views.ts), and a restore
 * serves the stored frames. The push sessions of this instance are archive-requests.ts's; retention and the sweeps
 * are archive-upkeep.ts's. Nothing lives on local disk, and nothing in memory that another instance needs: any
 * instance answers any request. This class exposes methods, never its parts.
 */
import { SnapferryError } from '../../core/errors.ts';
import { isSafeName, type SafeName } from '../../core/names.ts';
import type { FrameRecord, Status, Transfer } from '../../core/protocol.ts';
import type { AppService } from '../app-service.ts';
import { uploadLimits, type UploadLimits } from '../upload-limits.ts';
import type { UploadStore } from '../upload-store/store.ts';
import type { CreationMetadata } from '../transfers/creation.ts';
import type { ClientFacts, SnapshotList, VolumeSummary } from '../views.ts';
import type { SpoolProgress } from '../spool/progress.ts';
import type { RestoreRequest, RestoreStream } from '../restore.ts';
import type { Logger } from '../log.ts';
import { DEFAULT_TRANSFER_HISTORY } from '../transfer-history.ts';
import type { ObjectStore } from './object-store.ts';
import { ensureFormat } from './format.ts';
import { ARCHIVE_LEASE_MS } from './lease.ts';
import { DEFAULT_CHAIN_RULES, type ChainRules } from './chains.ts';
import type { TransferRecord } from './archive-transfer.ts';
import { openArchiveRestore } from './archive-restore.ts';
import { ARCHIVE_UPKEEP_MS, ArchiveUpkeep, type ArchiveRetentionLookup } from './archive-upkeep.ts';
import { ArchiveAdmission } from './archive-admission.ts';
import { ArchiveLifecycle } from './archive-lifecycle.ts';
import { ArchiveRequests } from './archive-requests.ts';
import { archiveUploadPath } from './archive-upload-path.ts';
import { ArchiveViews } from './archive-views.ts';
import { indexedClients } from './client-uploads.ts';
import type { SegmentUploads } from './segment-uploads.ts';
import { UploadOwners } from './upload-owners.ts';
import { StoredSealings } from './stream-sealing.ts';

export interface ArchiveServiceOptions {
  objects: ObjectStore;
  /** Where the archive is, for messages (s3://BUCKET/PREFIX at ENDPOINT), never a key. */
  where: string;
  /** This instance's name in leases. */
  holder: string;
  /** The lease on an upload (server/archive/lease.ts); default ARCHIVE_LEASE_MS. */
  leaseMs?: number;
  log: Logger;
  expireAfterMs?: number;
  chains?: ChainRules;
  /** Per client, as on a btrfs server (server/upload-limits.ts); counted in the bucket across instances. */
  limits?: Partial<UploadLimits>;
  /** Each volume's retention policy (the `retention:` keys); default: keep everything. */
  retention?: ArchiveRetentionLookup;
  /** How long an ended upload's tombstone stays in the bucket (endedTransfers.keepFor); default 7 days. */
  keepEndedMs?: number;
  /** How often the upkeep runs (archive-upkeep.ts), once at start() too; 0: only when asked. Default ARCHIVE_UPKEEP_MS. */
  upkeepEveryMs?: number;
}

export class ArchiveService implements AppService {
  private readonly objects: ObjectStore;
  private readonly owners: UploadOwners;
  private readonly uploads: SegmentUploads;
  /** What tus writes through: the uploads in the bucket, inside the client's quota. */
  private readonly guarded: UploadStore;
  private readonly admission: ArchiveAdmission;
  private readonly lifecycle: ArchiveLifecycle;
  private readonly views: ArchiveViews;
  private readonly requests: ArchiveRequests;
  /** Retention and the sweep of ended uploads, for the whole bucket (any instance runs it). */
  private readonly upkeep: ArchiveUpkeep;

  constructor(private readonly options: ArchiveServiceOptions) {
    const objects = (this.objects = options.objects);
    const { log } = options;
    const rules = options.chains ?? DEFAULT_CHAIN_RULES;
    const limits = uploadLimits(options.limits);
    this.owners = new UploadOwners(objects);
    this.requests = new ArchiveRequests(objects, options.holder, options.leaseMs ?? ARCHIVE_LEASE_MS);
    // One per instance: what it read of streams stored before sealings were recorded, it reads once.
    const sealings = new StoredSealings(objects);
    this.admission = new ArchiveAdmission({ objects, rules, limits, sealings });
    this.upkeep = new ArchiveUpkeep({
      objects, log, retention: options.retention ?? (() => ({})),
      keepEndedMs: options.keepEndedMs ?? DEFAULT_TRANSFER_HISTORY.keepForMs,
    });
    const path = archiveUploadPath({
      objects, log, limits, holder: options.holder, leaseMs: options.leaseMs, expireAfterMs: options.expireAfterMs ?? 0,
      clientOf: (id) => this.owners.clientOf(id),
      start: async (id, first) => this.admission.firstFrame(await this.owners.record(id), first),
      complete: async (id, segments) => void (await this.lifecycle.finish(id, segments)),
      end: (id, refusal) => this.lifecycle.end(id, refusal),
    });
    this.uploads = path.uploads;
    this.guarded = path.store;
    this.lifecycle = new ArchiveLifecycle({
      objects, log, owners: this.owners, uploads: this.uploads,
      stored: (client, volume) => this.upkeep.pruneLater(client, volume),
    });
    this.views = new ArchiveViews({
      objects, rules, owners: this.owners, sealings,
      arrived: (id) => this.uploads.arrived(id),
      finish: (id, segments) => this.lifecycle.finish(id, segments),
    });
  }

  /** Checks (or creates) the archive's format.json before anything else is read or written. */
  async start(): Promise<void> {
    await ensureFormat(this.objects, this.options.where);
    const every = this.options.upkeepEveryMs ?? ARCHIVE_UPKEEP_MS;
    if (every > 0) this.upkeep.start(every);
  }

  async close(): Promise<void> {
    await this.upkeep.stop();
  }

  uploadStore(): UploadStore {
    return this.guarded;
  }

  /** A new upload (archive-admission.ts): its metadata parsed, the chain rule applied, its record written. */
  async beginTransfer(client: SafeName, id: string, metadata: CreationMetadata): Promise<TransferRecord> {
    const record = await this.admission.begin(client, id, metadata);
    this.owners.note(id, client);
    this.views.saw(client);
    return record;
  }

  lookUpUpload(id: string): Promise<void> {
    return this.owners.lookUp(id);
  }

  transferOwner(id: string): string | undefined {
    return this.owners.of(id);
  }

  async abort(client: SafeName, id: string): Promise<Transfer> {
    await this.owners.owned(client, id);
    const t = await this.transfer(client, id);
    if (t.state === 'received' || t.state === 'aborted' || t.state === 'failed') return t;
    await this.lifecycle.end(id);
    return this.transfer(client, id);
  }

  async endRefusedCreation(client: SafeName, id: string, refusal: SnapferryError): Promise<void> {
    await this.owners.owned(client, id);
    // Ended already (a stream refused for good at frame 0 is ended with its refusal, SegmentUploads), or whole.
    if ((await this.transfer(client, id)).state !== 'uploading') return;
    await this.lifecycle.end(id, refusal);
  }

  /** As ReplicationService.endUploadsOf: only uploads, which wait for pushes the client can no longer make. */
  async endUploadsOf(client: SafeName): Promise<string[]> {
    const ended: string[] = [];
    for (const t of await this.transfers(client)) {
      if (t.state !== 'uploading') continue;
      // Every instance on the bucket reads the same tokens file and ends what it finds: each may count one another
      // ended a moment before. One that cannot be ended now expires as before.
      const now = await this.abort(client, t.id).catch(() => null);
      if (now?.state === 'aborted') ended.push(t.id);
    }
    return ended;
  }

  /** Every client that has ever created an upload in the bucket (its uploads index): few, and read once at start. */
  async clientsWithUploads(): Promise<SafeName[]> {
    return (await indexedClients(this.objects)).filter(isSafeName).sort();
  }

  /** Segments are write-once and whole: an upload is not cut back (a push whose stream changed starts a new one). */
  async rewind(client: SafeName, id: string): Promise<Transfer> {
    await this.owners.owned(client, id);
    throw new SnapferryError('rewind_unsupported', `an archive upload cannot be cut back; abort transfer ${id} and push the snapshot again`, {
      details: { transferId: id },
    });
  }

  /**
   * Nothing to let go of: an archive upload is leased only while a request runs (archive-requests.ts, and the bucket's
   * lease per request), so a stopped push's rerun is admitted as soon as its last request has ended.
   */
  async release(client: SafeName, id: string): Promise<Transfer> {
    await this.owners.owned(client, id);
    return this.transfer(client, id);
  }

  /** The stored stream, as stored (archive-restore.ts). */
  restoreStream(req: RestoreRequest): Promise<RestoreStream> {
    return openArchiveRestore(this.objects, req);
  }

  // --- a request's life on an upload (archive-requests.ts) ------------------------------------------------------

  enterRequest(id: string, session: string): void { this.requests.enter(id, session); }
  leaveRequest(id: string): void { this.requests.leave(id); }
  /** Another instance's live lease refuses a PATCH here, before tus compares its offset (transfer_locked). */
  noteUploadRequest(id: string): Promise<void> { return this.requests.patch(id); }
  /** A part is answered once the bucket has it: nothing is acknowledged before it is kept. */
  syncedOffset(): null { return null; }
  /** An archive records no cut requests: false keeps app.ts's noteCut from looking for one. */
  isUploading(): boolean { return false; }
  async noteInterruption(): Promise<void> {}

  // --- reads: the API's views (archive-views.ts) ---------------------------------------------------------------

  transfer(client: SafeName, id: string): Promise<Transfer> { return this.views.transfer(client, id); }
  transfers(client: SafeName): Promise<Transfer[]> { return this.views.transfers(client); }
  frames(client: SafeName, id: string, from: number, limit: number): Promise<FrameRecord[]> { return this.views.frames(client, id, from, limit); }
  snapshots(client: SafeName, volume: SafeName): Promise<SnapshotList> { return this.views.snapshots(client, volume); }
  volumes(client: SafeName): Promise<VolumeSummary[]> { return this.views.volumes(client); }
  status(client?: SafeName): Promise<Status> { return this.views.status(client); }
  clients(): SafeName[] { return this.views.clients(); }
  clientFacts(client: SafeName): Promise<ClientFacts> { return this.views.clientFacts(client); }
  progress(id: string): Promise<SpoolProgress> { return this.views.progress(id); }
}
