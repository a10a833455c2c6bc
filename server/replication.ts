/**
 * The server's core, as one facade over its parts: transfers from creation to a received snapshot, and the views the
 * API shows. The decisions live in pure modules it feeds: whether an upload may begin (server/transfers/creation.ts,
 * its looking in admission.ts), what an event does to a transfer (server/transfers/machine.ts, run by
 * server/transfers/lifecycle.ts on the running receives and their retries), what a receive must check
 * (server/transfers/receive-job.ts) and what the API shows (server/views.ts); the way bytes come in is put together
 * in server/upload-path.ts. This class does the looking (the catalog, the disk) and hands the events on. It exposes
 * methods, never its parts; server/app.ts and server/upload-store/tus-server.ts are thin layers over it.
 */
import fs from 'node:fs/promises';
import type { SnapferryError } from '../core/errors.ts';
import type { SafeName } from '../core/names.ts';
import { inProgress, type FrameRecord, type SnapshotAltered, type Status, type Transfer } from '../core/protocol.ts';
import { btrfsFeatures } from '../core/btrfs/features.ts';
import type { SendUuidMap } from '../core/wire/sendstream-uuids.ts';
import { LEASE_MS, UploadLeases } from './leases.ts';
import { UploadRequests } from './upload-requests.ts';
import { DEFAULT_EXPIRE_AFTER_MS, sweepIntervalMs } from './expiry.ts';
import { Catalog, type SnapshotRecord, type TransferRecord } from './catalog.ts';
import { ServerLayout } from './layout.ts';
import { Spool, type SpoolProgress } from './spool/spool.ts';
import type { UploadStore } from './upload-store/index.ts';
import { uploadPath } from './upload-path.ts';
import { uploadLimits } from './upload-limits.ts';
import { SpoolUsage } from './spool/usage.ts';
import { DEFAULT_TRANSFER_HISTORY } from './transfer-history.ts';
import { checkMount, type PrivilegedFiles } from './mount-safety.ts';
import { reconcile } from './reconcile.ts';
import { toClientMap } from './uuid-namespace.ts';
import { DEFAULT_RETRY } from './receive-wait.ts';
import { spoolBytes, type OrphanedSpool } from './orphan-spools.ts';
import { SpoolSweep } from './spool-sweep.ts';
import { DEFAULT_PRUNE_RETRY, KEEP_EVERYTHING, ServerPruner } from './retention.ts';
import { SendsInProgress } from './sends.ts';
import { SavedDigests } from './verify/saved-digests.ts';
import { failUploadsWithoutParent, lookAtSent, refreshVolume, type DiskTruth } from './disk-truth.ts';
import { Views, type ClientFacts, type SnapshotList, type VolumeSummary } from './views.ts';
import type { CreationMetadata } from './transfers/creation.ts';
import { Admission, clientSpools } from './transfers/admission.ts';
import * as machine from './transfers/machine.ts';
import { TransferLifecycle } from './transfers/lifecycle.ts';
import type { LiveReceives } from './live-receives.ts';
import type { ReceiveRetries } from './receive-retries.ts';
import { TransferConflict } from './transfers/errors.ts';
import type { ServiceOptions } from './service-options.ts';
import type { AppService } from './app-service.ts';
import { openRestoreStream, type RestoreRequest, type RestoreStream } from './restore.ts';
import type { Logger } from './log.ts';

export { NotFound, TransferConflict } from './transfers/errors.ts';
export type { PrivilegedFiles } from './mount-safety.ts';
export type { ServiceOptions } from './service-options.ts';

export class ReplicationService implements AppService {
  private readonly store: Spool;
  /** The upload store tus writes through (server/upload-store/): the spool, with ownership, expiry and quota around it. */
  private readonly uploads: UploadStore;
  private readonly receives: LiveReceives;
  private readonly retries: ReceiveRetries;
  private readonly admission: Admission;
  private readonly pruner: ServerPruner;
  /** Snapshots a restore is sending now: retention passes them over (server/sends.ts). */
  private readonly sends = new SendsInProgress();
  private readonly spools: SpoolSweep;
  /** How often the spool sweep runs: often enough for the expiry period and the transfer history alike. */
  private readonly sweepMs: number;
  private readonly views: Views;
  private readonly lifecycle: TransferLifecycle;
  private readonly privilegedFiles: PrivilegedFiles;
  private readonly disk: DiskTruth;
  private readonly requests: UploadRequests;

  private constructor(
    private readonly layout: ServerLayout,
    private readonly catalog: Catalog,
    private readonly log: Logger,
    options: ServiceOptions,
  ) {
    const leases = new UploadLeases(options.leaseMs);
    this.disk = { catalog, layout, log };
    this.requests = new UploadRequests(leases, log);
    const limits = uploadLimits(options.limits);
    // What each client's uploads hold in the spool, which its quota bounds.
    const usage = new SpoolUsage((client) => clientSpools(this.disk, client));
    this.privilegedFiles = options.privilegedFiles ?? 'allow';
    this.store = new Spool(layout, {
      onDamage: (id, message) => log.warn({ transfer: id }, message),
      onLateFailure: (id, err) => log.error({ transfer: id, err }, 'syncing an upload\'s spool failed after its request was answered; its client keeps those bytes until a later sync'),
    });
    this.pruner = new ServerPruner(layout, catalog, log, options.retention ?? KEEP_EVERYTHING, this.sends, { ...DEFAULT_PRUNE_RETRY, ...options.pruneRetry });
    // What retention passed over while it was being sent goes once the send has ended.
    this.sends.onVolumeIdle((client, volume) => void this.pruner.pruneVolume(client, volume));
    this.lifecycle = new TransferLifecycle({
      layout, catalog, log, spool: this.store, pruner: this.pruner, privilegedFiles: this.privilegedFiles,
      freeBytes: () => this.freeBytes(), spoolBytes: (id) => spoolBytes(layout, id), dropSpool: (id) => this.dropSpool(id),
      holdReceives: options.holdReceives ?? false, retry: { ...DEFAULT_RETRY, ...options.receiveRetry },
    });
    this.receives = this.lifecycle.receives;
    this.admission = new Admission(this.disk, limits, (id) => this.receives.isReceiving(id));
    this.retries = this.lifecycle.retries;
    this.uploads = uploadPath({
      layout, catalog, log, spool: this.store, receives: this.receives, leases, leaseMs: options.leaseMs ?? LEASE_MS,
      expireAfterMs: options.expireAfterMs ?? 0, usage, limits, endTransfer: (id) => this.endTransfer(id),
      endNotRecorded: (id, change, err) => this.lifecycle.endNotRecorded(id, change, err),
    });
    const keepFailedMs = options.expireAfterMs ?? 0;
    const history = { ...DEFAULT_TRANSFER_HISTORY, ...options.endedTransfers };
    this.spools = new SpoolSweep({ layout, catalog, log, keepFailedMs, history, dropSpool: (id) => this.dropSpool(id) });
    this.sweepMs = Math.min(sweepIntervalMs(keepFailedMs > 0 ? keepFailedMs : DEFAULT_EXPIRE_AFTER_MS), sweepIntervalMs(history.keepForMs));
    this.views = new Views({
      catalog, startedAt: Date.now(),
      progress: (id) => this.store.progress(id),
      frameRecords: (id, from, limit) => this.store.frames(id, from, limit),
      arrived: (id) => this.store.arrived(id),
      held: (id) => this.store.held(id),
      heldByPush: (id) => this.requests.held(id),
      rawReceived: (id) => this.rawReceived(id),
      freeBytes: () => this.freeBytes(),
      unrecordedEnd: (t, free) => this.retries.unrecordedEnd(t, free),
      spoolBytes: (id) => spoolBytes(layout, id),
      orphanedSpools: (client) => this.orphanedSpools(client),
      refreshVolume: (client, volume) => refreshVolume(this.disk, client, volume),
      receiveStreamVersions: async () => (await btrfsFeatures()).receiveStreamVersions,
    });
  }

  static async open(root: string, log: Logger, options: ServiceOptions = {}): Promise<ReplicationService> {
    const layout = new ServerLayout(root);
    await fs.mkdir(layout.spool, { recursive: true, mode: 0o700 });
    await fs.mkdir(layout.volumes, { recursive: true, mode: 0o700 });
    const catalog = await Catalog.open(layout.catalog, options.catalogWriter);
    return new ReplicationService(layout, catalog, log, options);
  }

  /**
   * At start: the catalog meets the disk, leftovers of a crash are cleaned (partial receives and orphaned spools
   * among them), and every upload that holds verified frames is received again from its spool, complete or not,
   * waiting ones included. Then the waiting receives and the orphaned spools are looked at now and then.
   */
  async start(): Promise<void> {
    await checkMount(this.layout.volumes, this.privilegedFiles, this.log);
    const reconciled = await reconcile(this.layout, this.catalog, (id) => this.store.progress(id), this.log);
    await this.lifecycle.failOnAlteredParents();
    // Parents reconcile found deleted by hand: their uploads would hold their volumes for ever.
    await failUploadsWithoutParent(this.disk);
    const pending = reconciled.filter((id) => inProgress(this.catalog.transfer(id)?.state ?? 'failed'));
    await this.spools.sweep();
    for (const id of pending) await this.retries.receiveAgain(id, 'the server started');
    for (const t of this.catalog.transfers()) if (t.state === 'uploading') this.receives.startFromSpool(t.id);
    await this.pruner.pruneAll();
    this.retries.start();
    this.spools.start(this.sweepMs);
  }

  /** Lets held receives run (see ServiceOptions.holdReceives). */
  resumeReceives(): void {
    this.receives.resume();
  }

  /** Resolves when no receive of a complete upload is running or about to (tests). */
  idle(): Promise<void> {
    return this.receives.idle();
  }

  /** A graceful shutdown: receives of uploads in progress are stopped (and started again at the next start). */
  async close(): Promise<void> {
    this.pruner.stop();
    await Promise.all([this.retries.stop(), this.spools.stop()]);
    await this.receives.close();
  }

  // --- transfer lifecycle -------------------------------------------------------------------------------------

  /** Validates a new upload's metadata (the tus creation request) and records the transfer. */
  beginTransfer(client: SafeName, id: string, metadata: CreationMetadata): Promise<TransferRecord> {
    return this.admission.begin(client, id, metadata);
  }

  /** Free bytes on the filesystem of the server's root (spool and volumes alike), or null when unreadable. */
  private async freeBytes(): Promise<number | null> {
    const stats = await fs.statfs(this.layout.root).catch(() => null);
    return stats ? stats.bavail * stats.bsize : null;
  }

  /** Deletes an upload's files, those that are there, and what the spool counted of its arrivals. */
  private async dropSpool(id: string): Promise<void> {
    await this.store.drop(id);
  }

  /** Every transfer is in this process's catalog: nothing to look up. */
  async lookUpUpload(): Promise<void> {}

  /** A received snapshot sent back by this server's own btrfs send (server/restore.ts). */
  async restoreStream(req: RestoreRequest): Promise<RestoreStream> {
    // The parent the client names may be one the catalog holds without its client UUID (server/uuid-namespace.ts).
    await this.catalog.learnUuids(req.client, [req.parentUuid]);
    return openRestoreStream(this, req);
  }

  /** The store tus writes uploads through (server/upload-store/tus-store.ts adapts it). */
  uploadStore(): UploadStore {
    return this.uploads;
  }

  /**
   * Throws away a transfer that is not being received: an upload in progress or a stream waiting for its receive
   * (spool and all; it becomes aborted), or the spool a failed one kept (it stays failed, with its reason).
   */
  async abort(client: SafeName, id: string): Promise<Transfer> {
    this.views.own(client, id);
    await this.endTransfer(id);
    return this.transfer(client, id);
  }

  async endRefusedCreation(client: SafeName, id: string, refusal: SnapferryError): Promise<void> {
    this.views.own(client, id);
    await this.lifecycle.run(id, machine.onCreationRefused(this.catalog.transfer(id), refusal, new Date().toISOString()));
  }

  /**
   * Only uploads: they wait for a push the client can no longer make, their receive idle in the volume until they
   * expire. A whole stream (receiving, or waiting for space or a retry) needs nothing more of the client and becomes a
   * snapshot like those it already has, which stay.
   */
  async endUploadsOf(client: SafeName): Promise<string[]> {
    const ended: string[] = [];
    for (const t of this.catalog.transfers({ client })) {
      if (t.state !== 'uploading') continue;
      try {
        await this.endTransfer(t.id);
        ended.push(t.id);
      } catch (err) {
        // Its end frame verified meanwhile (transfer_receiving): a whole stream now. Anything else, the next one.
        this.log.warn({ err, transfer: t.id, client }, 'an upload of a removed client could not be ended');
      }
    }
    return ended;
  }

  /** The clients with an upload in the catalog (endUploadsOf's). */
  async clientsWithUploads(): Promise<SafeName[]> {
    return [...new Set(this.catalog.transfers().filter((t) => t.state === 'uploading').map((t) => t.client as SafeName))].sort();
  }

  /** abort() for a caller already known to own the transfer: the API's abort, and a tus DELETE (termination). */
  private async endTransfer(id: string): Promise<void> {
    await this.lifecycle.run(id, machine.endTransfer(id, this.catalog.transfer(id)));
  }

  /**
   * Cuts an upload back to its first `frames` frames (docs/design.md, "Resume"): the client found that its regenerated
   * stream differs from frame `frames` on. Refused while another request of the upload is in flight.
   */
  async rewind(client: SafeName, id: string, session: string, frames: number): Promise<Transfer> {
    const t = this.views.own(client, id);
    machine.assertRewindable(t);
    this.requests.acquire(id, session);
    if (this.requests.inFlight(id)) {
      throw new TransferConflict('transfer_locked', `transfer ${id} has a request in flight; try again`, { retryable: true });
    }
    const before = await this.store.progress(id);
    await this.lifecycle.run(id, machine.rewind(t, before.framesVerified, frames, new Date().toISOString()));
    return this.transfer(client, id);
  }

  /**
   * The push of `session` has stopped (Ctrl-C) and lets go of upload `id`: the same command run again goes on at once
   * instead of waiting out the lease. The transfer itself is untouched: what arrived stays, to be resumed.
   */
  async release(client: SafeName, id: string, session: string): Promise<Transfer> {
    this.views.own(client, id);
    if (this.requests.release(id, session)) this.log.debug({ transfer: id }, 'the push let go of its upload');
    return this.transfer(client, id);
  }

  /** A PATCH ended before its body did: the link was cut. Kept so status can say when and where, and logged. */
  async noteInterruption(id: string, offset: number, refusedWith: string | null = null): Promise<void> {
    const t = this.catalog.transfer(id);
    if (t?.state !== 'uploading') return;
    const p = await this.store.progress(id);
    await this.lifecycle.run(id, machine.noteInterruption(t, offset, p.framesVerified, new Date().toISOString(), refusedWith));
    this.requests.cut(id);
  }

  /** A PATCH begins at `offset` (server/upload-requests.ts logs a resume). */
  noteUploadRequest(id: string, offset: number, answerWhenWritten: boolean): void {
    const t = this.catalog.transfer(id);
    this.requests.patch(id, offset, { volume: t?.volume, snapshot: t?.snapshot });
    this.store.answerWhenWritten(id, answerWhenWritten);
  }

  syncedOffset(id: string): number | null {
    return this.store.syncedOffset(id);
  }

  /** A tus request on upload `id` begins (leased to its push while it takes bytes); pair with leaveRequest. */
  enterRequest(id: string, session: string): void {
    this.requests.enter(id, session, this.isUploading(id));
  }

  leaveRequest(id: string): void {
    this.requests.leave(id);
  }

  /** Whether a request on upload `id` is under way (tests wait for a cut request to be let go of). */
  inFlight(id: string): boolean {
    return this.requests.inFlight(id);
  }

  // --- reads: the API's views (server/views.ts), and facts for the other server modules --------------------------

  transfer(client: SafeName, id: string): Promise<Transfer> { return this.views.transfer(client, id); }
  transfers(client: SafeName): Promise<Transfer[]> { return this.views.transfers(client); }
  frames(client: SafeName, id: string, from: number, limit: number): Promise<FrameRecord[]> { return this.views.frames(client, id, from, limit); }
  snapshots(client: SafeName, volume: SafeName): Promise<SnapshotList> { return this.views.snapshots(client, volume); }
  volumes(client: SafeName): Promise<VolumeSummary[]> { return this.views.volumes(client); }
  /** The server's status; with `client`, that client's counts. */
  status(client?: SafeName): Promise<Status> { return this.views.status(client); }
  clients(): SafeName[] { return this.views.clients(); }
  /** What /metrics counts of one client. */
  clientFacts(client: SafeName): Promise<ClientFacts> { return this.views.clientFacts(client); }
  /** Spools that nothing will read again (server/orphan-spools.ts), of one client's transfers or of all. */
  orphanedSpools(client?: string): Promise<OrphanedSpool[]> { return this.spools.orphaned(client); }
  /** Raw bytes fed to the transfer's running `btrfs receive` so far (0 when none runs, as once it has finished). */
  rawReceived(id: string): number { return this.receives.rawFed(id); }
  isUploading(id: string): boolean { return this.catalog.transfer(id)?.state === 'uploading'; }
  /** The upload's verified progress (its frame index). */
  progress(id: string): Promise<SpoolProgress> { return this.store.progress(id); }
  transferOwner(id: string): string | undefined { return this.catalog.transfer(id)?.client; }
  /** Where a received snapshot is on disk (restore and verify read it). */
  snapshotPath(client: SafeName, volume: SafeName, name: SafeName): string { return this.layout.snapshotPath(client, volume, name); }

  holdSend(client: SafeName, volume: SafeName, uuids: string[]): () => void { return this.sends.hold(client, volume, uuids); }
  /** A restore's send of a snapshot against its record: flagged when changed since its receive (server/disk-truth.ts). */
  async lookAtSent(client: SafeName, volume: SafeName, uuid: string, ctransid: number): Promise<SnapshotAltered | null> {
    return (await lookAtSent(this.disk, client, volume, uuid, ctransid))?.altered ?? null;
  }
  /** The client's own UUIDs for the Received UUIDs on disk (server/uuid-namespace.ts), for a restore's stream. */
  clientUuids(client: string): SendUuidMap { return toClientMap(this.catalog, client); }
  /** Where each snapshot's tree digest is kept (server/verify/saved-digests.ts). */
  savedDigests(): SavedDigests { return new SavedDigests(this.layout); }

  /** The catalog's records, as copies: they change only through the service. */
  transferRecord(id: string): TransferRecord | undefined {
    const t = this.catalog.transfer(id);
    return t && { ...t };
  }

  transferRecords(filter: { client?: string; volume?: string } = {}): TransferRecord[] {
    return this.catalog.transfers(filter).map((t) => ({ ...t }));
  }

  /** Of one client (and volume), or of all. */
  /** Catalog.learnUuids: the client UUIDs of snapshots adopted without them (server/uuid-namespace.ts). */
  learnUuids(client: string, uuids: Iterable<string | null | undefined>): Promise<SnapshotRecord[]> {
    return this.catalog.learnUuids(client, uuids);
  }

  snapshotRecords(client?: string, volume?: string): SnapshotRecord[] {
    return (client === undefined ? this.catalog.allSnapshots() : this.catalog.snapshots(client, volume)).map((s) => ({ ...s }));
  }
}
