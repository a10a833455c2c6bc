/**
 * The server's core: transfers from creation to a received snapshot, and the views the API shows. It knows nothing
 * of HTTP or tus requests; server/app.ts and server/upload-store/tus-server.ts are thin layers over it.
 */
import fs from 'node:fs/promises';
import { SnapferryError, ValidationError } from '../core/errors.ts';
import * as btrfs from '../core/btrfs/index.ts';
import { parseName, parseUuid, type SafeName } from '../core/names.ts';
import { META, MAX_FRAMES_PER_PAGE, SEND_STREAM_VERSION, SendStreamName, WIRE_FORMAT, inProgress, sendStreams, waitingStates, type FrameRecord, type SendStream, type Snapshot, type Status, type Transfer } from '../core/protocol.ts';
import { btrfsFeatures } from '../core/btrfs/features.ts';
import { LEASE_MS, UploadLeases } from './leases.ts';
import { DEFAULT_EXPIRE_AFTER_MS, expiryHooks, sweepIntervalMs } from './expiry.ts';
import { FrameError } from '../core/wire/index.ts';
import { validateChunkSize } from '../core/wire/index.ts';
import { Catalog, type SnapshotRecord, type TransferRecord } from './catalog.ts';
import { ServerLayout } from './layout.ts';
import { Spool } from './spool/spool.ts';
import { uploadStore, type UploadStore } from './upload-store/index.ts';
import { Ingest } from './ingest.ts';
import { uploadQuota } from './upload-quota.ts';
import { tooManyCreations, tooManyUploads, uploadLimits, type UploadLimits } from './upload-limits.ts';
import { SpoolUsage, type SpoolFiles } from './spool/usage.ts';
import { CreationRate } from './creation-rate.ts';
import { DEFAULT_TRANSFER_HISTORY, endedToForget, type TransferHistory } from './transfer-history.ts';
import { DiskFullError, asDiskFull } from './disk-full.ts';
import { mountAdvice, mountSafety } from './mount-safety.ts';
import type { SendStreamPolicy } from '../core/wire/sendstream-policy.ts';
import type { ReceiveJob, ReceivedSnapshot } from './receiver.ts';
import { LiveReceives } from './live-receives.ts';
import { reconcile } from './reconcile.ts';
import { toDiskMap } from './uuid-namespace.ts';
import { describeAlterations, judgeSnapshot, parentAltered } from './alterations.ts';
import { classifyReceiveFailure, DEFAULT_RETRY, type RetrySchedule } from './receive-wait.ts';
import { ReceiveRetries } from './receive-retries.ts';
import { dueForDeletion, orphansAmong, spoolBytes, spoolsOnDisk, type OrphanedSpool } from './orphan-spools.ts';
import { runEvery, type Periodic } from './periodic.ts';
import { KEEP_EVERYTHING, ServerPruner, type RetentionLookup } from './retention.ts';
import { byTaken, parseTimeMetadata } from './snapshot-time.ts';
import type { Logger } from './log.ts';

export class TransferConflict extends SnapferryError {}
export class NotFound extends SnapferryError {
  constructor(what: string) {
    super('not_found', `${what} not found`);
  }
}

export interface ServiceOptions {
  /** Start no receive until resumeReceives(). */
  holdReceives?: boolean;
  /** Abandoned uploads (no request for this long) are deleted and their transfers failed (server/expiry.ts); 0 never. */
  expireAfterMs?: number;
  /** How long an upload stays reserved for the push that last touched it (server/leases.ts). */
  leaseMs?: number;
  /** Per client: bytes its uploads may hold, how many may be open, how fast it may create them (server/upload-limits.ts). */
  limits?: Partial<UploadLimits>;
  /** How long, and how many per client, the catalog keeps transfers that are over (server/transfer-history.ts). */
  endedTransfers?: Partial<TransferHistory>;
  /**
   * Device nodes and setuid/setgid files (and file capabilities) in received streams. 'allow' (default) receives
   * them as they are, a faithful backup, and warns at start when the volumes' mount is not nosuid,nodev, which is
   * what makes them inert; 'inert-mount' refuses to start unless it is; 'refuse' refuses streams that carry them.
   */
  privilegedFiles?: PrivilegedFiles;
  /** Each received volume's retention policy (server/retention.ts), applied after each receive and at start. */
  retention?: RetentionLookup;
  /** When a receive that failed for the server's own reasons runs again (server/receive-wait.ts); tests shorten it. */
  receiveRetry?: Partial<RetrySchedule>;
}

export type PrivilegedFiles = 'allow' | 'inert-mount' | 'refuse';

/** Below this much free space (plus two chunks) a new upload is refused at once: it could not get far. */
const MIN_FREE_BYTES = 4 * 1024 * 1024;

const VERSION = '0.1.0';

export class ReplicationService {
  readonly store: Spool;
  /** The upload store tus writes through (server/upload-store/): the spool, with ownership, expiry and quota around it. */
  private readonly uploads: UploadStore;
  readonly leases: UploadLeases;
  readonly limits: Readonly<UploadLimits>;
  private readonly privilegedFiles: PrivilegedFiles;
  private readonly receives: LiveReceives;
  private readonly retries: ReceiveRetries;
  /** How long a failed transfer keeps its spool (the expiry period; 0: until it is aborted). */
  private readonly keepFailedMs: number;
  private orphanSweep: Periodic | null = null;
  /** What each client's uploads hold in the spool, which its quota bounds. */
  private readonly usage: SpoolUsage;
  private readonly creations: CreationRate;
  private readonly history: Readonly<TransferHistory>;
  readonly pruner: ServerPruner;
  private readonly startedAt = Date.now();

  private constructor(
    readonly layout: ServerLayout,
    readonly catalog: Catalog,
    private readonly log: Logger,
    options: ServiceOptions,
  ) {
    this.leases = new UploadLeases(options.leaseMs);
    this.limits = uploadLimits(options.limits);
    this.usage = new SpoolUsage((client) => this.spoolsOf(client));
    this.creations = new CreationRate(this.limits);
    this.history = { ...DEFAULT_TRANSFER_HISTORY, ...options.endedTransfers };
    this.privilegedFiles = options.privilegedFiles ?? 'allow';
    const expiry = expiryHooks({ catalog, leases: this.leases, leaseMs: options.leaseMs ?? LEASE_MS, expireAfterMs: options.expireAfterMs ?? 0, log });
    this.store = new Spool(layout);
    this.receives = new LiveReceives(layout, {
      jobFor: (id) => this.receiveJob(id),
      progressOf: (id) => this.store.progress(id),
      received: (id, got) => this.onReceived(id, got),
      failed: (id, err) => this.onReceiveFailed(id, err),
    }, log, options.holdReceives ?? false);
    const ingest = new Ingest({ spool: this.store, catalog, receives: this.receives, log });
    this.uploads = uploadStore({
      spool: this.store,
      ingest,
      owner: { closedError: (id) => ingest.closedError(id), terminate: (id) => this.endTransfer(id) },
      expiry: {
        ...expiry,
        expired: (id, facts) => {
          expiry.expired(id, facts);
          ingest.expired(id);
        },
      },
      expireAfterMs: options.expireAfterMs ?? 0,
      quota: uploadQuota({ catalog, layout, usage: this.usage, limits: this.limits, log, drop: (id) => this.dropSpool(id) }),
    });
    this.retries = new ReceiveRetries({
      catalog, log,
      freeBytes: () => this.freeBytes(),
      startFromSpool: (id) => this.receives.startFromSpool(id),
      startLater: (id, ms) => this.receives.restartLater(id, ms),
    }, { ...DEFAULT_RETRY, ...options.receiveRetry });
    this.keepFailedMs = options.expireAfterMs ?? 0;
    this.pruner = new ServerPruner(layout, catalog, log, options.retention ?? KEEP_EVERYTHING);
  }

  static async open(root: string, log: Logger, options: ServiceOptions = {}): Promise<ReplicationService> {
    const layout = new ServerLayout(root);
    await fs.mkdir(layout.spool, { recursive: true, mode: 0o700 });
    await fs.mkdir(layout.volumes, { recursive: true, mode: 0o700 });
    const catalog = await Catalog.open(layout.catalog);
    return new ReplicationService(layout, catalog, log, options);
  }

  /**
   * At start: the catalog meets the disk, leftovers of a crash are cleaned (partial receives and orphaned spools
   * among them), and every upload that holds verified frames is received again from its spool, complete or not,
   * waiting ones included. Then the waiting receives and the orphaned spools are looked at now and then.
   */
  async start(): Promise<void> {
    await this.checkMount();
    const reconciled = await reconcile(this.layout, this.catalog, this.log);
    await this.failOnAlteredParents();
    const pending = reconciled.filter((id) => inProgress(this.catalog.transfer(id)?.state ?? 'failed'));
    await this.sweepOrphans();
    for (const id of pending) await this.retries.receiveAgain(id, 'the server started');
    for (const t of this.catalog.transfers()) if (t.state === 'uploading') this.receives.startFromSpool(t.id);
    await this.pruner.pruneAll();
    this.retries.start();
    const sweepMs = Math.min(sweepIntervalMs(this.keepFailedMs > 0 ? this.keepFailedMs : DEFAULT_EXPIRE_AFTER_MS), sweepIntervalMs(this.history.keepForMs));
    this.orphanSweep ??= runEvery(sweepMs, () => this.sweepOrphans(), (err) => this.log.error({ err }, 'could not sweep orphaned spools; trying again at the next sweep'));
  }

  /** Lets held receives run (see ServeOptions.holdReceives). */
  /** Uploads cut since their last PATCH began (noteInterruption), and uploads that got a PATCH from this process. */
  private readonly resumable = new Set<string>();
  private readonly patched = new Set<string>();

  /** The store tus writes uploads through (server/upload-store/tus-store.ts adapts it). */
  uploadStore(): UploadStore {
    return this.uploads;
  }

  resumeReceives(): void {
    this.receives.resume();
  }

  /** Resolves when no receive of a complete upload is running or about to (tests). */
  idle(): Promise<void> {
    return this.receives.idle();
  }

  /** A graceful shutdown: receives of uploads in progress are stopped (and started again at the next start). */
  async close(): Promise<void> {
    await Promise.all([this.retries.stop(), this.orphanSweep?.stop()]);
    await this.receives.close();
  }

  // --- transfer lifecycle -------------------------------------------------------------------------------------

  /** Validates a new upload's metadata (the tus creation request) and records the transfer. */
  async beginTransfer(client: SafeName, id: string, metadata: Record<string, string | null | undefined>): Promise<TransferRecord> {
    const wait = this.creations.take(client);
    if (wait > 0) throw tooManyCreations(client, this.limits, wait);
    const volume = parseName(metadata[META.volume], 'volume');
    const snapshot = parseName(metadata[META.snapshot], 'snapshot name');
    const uuid = parseUuid(metadata[META.uuid], 'snapshot UUID');
    const parentRaw = metadata[META.parentUuid];
    const parentUuid = parentRaw ? parseUuid(parentRaw, 'parent UUID') : null;
    if (metadata[META.format] !== WIRE_FORMAT) {
      throw new SnapferryError('unsupported_format', `this server speaks wire format ${WIRE_FORMAT}; upgrade the client or the server so they match`);
    }
    const chunkSize = parseChunkSize(metadata[META.chunkSize]);
    const estimate = Number(metadata[META.rawEstimate]);
    const sendStream = await this.receivableSendStream(metadata[META.sendStream]);
    const createdAt = parseTimeMetadata(metadata[META.createdAt], META.createdAt);
    const takenAt = parseTimeMetadata(metadata[META.takenAt], META.takenAt);

    await this.checkFreeSpace(chunkSize);
    await this.checkOpenUploads(client);

    await this.refreshVolume(client, volume);
    // Looked at on disk before the checks below, which must run in one turn (see ServerPruner.prune).
    if (parentUuid) await this.lookAtParent(client, volume, parentUuid);
    const held = this.catalog.snapshots(client, volume);
    if (held.some((s) => s.uuid === uuid)) {
      throw new TransferConflict('snapshot_present', `the server already holds ${volume}/${snapshot}`, { details: { volume, snapshot } });
    }
    if (held.some((s) => s.name === snapshot)) {
      throw new TransferConflict('snapshot_name_taken', `${volume} already has a different snapshot named ${snapshot} on the server; rename one of them`);
    }
    // One client's snapshot lives in one volume: its UUID maps to one Received UUID on disk
    // (server/uuid-namespace.ts), which two subvolumes must not share. Another client's UUIDs are in another
    // namespace and change nothing here. Checked again just before the receive, for two uploads of one UUID at once.
    this.assertUuidFree(client, volume, uuid);
    if (parentUuid && !held.some((s) => s.uuid === parentUuid)) {
      throw new TransferConflict('parent_missing', `the server does not hold the parent snapshot ${parentUuid} of ${snapshot}; push again to pick another parent`, {
        details: { parentUuid },
      });
    }
    const parent = held.find((s) => s.uuid === parentUuid);
    if (parent?.altered) throw parentAltered(parent);
    const busy = this.catalog.transfers({ client, volume }).find((t) => inProgress(t.state));
    if (busy) {
      throw new TransferConflict('volume_busy', `transfer ${busy.id} of ${volume}/${busy.snapshot} is already in progress (${busy.state}); wait for it or abort it`, {
        retryable: true,
        details: { transferId: busy.id, snapshot: busy.snapshot, state: busy.state },
      });
    }
    const now = new Date().toISOString();
    const record: TransferRecord = {
      id, client, volume, snapshot, uuid, parentUuid, chunkSize, sendStream, snapshotCreatedAt: createdAt, snapshotTakenAt: takenAt,
      state: 'uploading', createdAt: now, updatedAt: now,
      rawEstimate: Number.isFinite(estimate) && estimate >= 0 ? estimate : null,
      error: null, lastInterruption: null, interruptions: 0, wireBytes: null, rawBytes: null, framesVerified: null, wait: null,
    };
    try {
      await this.catalog.putTransfer(record);
    } catch (err) {
      // The record is in memory even when saving it failed: it must not hold the volume busy.
      await this.catalog.updateTransfer(id, { state: 'failed', error: { code: 'create_failed', message: String(err), at: now } }).catch(() => undefined);
      throw asDiskFull(err, { transferId: id });
    }
    this.log.info({ transfer: id, client, volume, snapshot, parentUuid }, 'transfer created');
    return record;
  }

  /**
   * The parent a new incremental names, as the disk has it now: changed by hand since the server started (made
   * writable, its Received UUID cleared), it is flagged here, so the check that follows refuses it.
   */
  private async lookAtParent(client: SafeName, volume: SafeName, parentUuid: string): Promise<void> {
    const record = this.catalog.snapshots(client, volume).find((s) => s.uuid === parentUuid);
    if (!record) return;
    const verdict = judgeSnapshot(record, await btrfs.subvolumeShow(this.layout.snapshotPath(client, volume, record.name as SafeName)).catch(() => null));
    if (verdict.kind !== 'altered') return;
    const current = this.catalog.snapshots(client, volume).find((s) => s.uuid === parentUuid);
    if (!current) return;
    const flagged = await this.catalog.markAltered(current, verdict.what);
    this.log.warn({ client, volume, snapshot: record.name, altered: flagged.altered }, `received snapshot changed by hand: it ${describeAlterations(flagged.altered?.what ?? [])}; kept, but never used as a parent`);
  }

  /**
   * At start, once reconcile has flagged what was changed by hand: a transfer in progress whose parent is flagged
   * would be received onto changed content (or fail late, once btrfs receive finds no parent), so it fails now, with
   * the reason. The client's next push picks another parent.
   */
  private async failOnAlteredParents(): Promise<void> {
    for (const t of this.catalog.transfers()) {
      if (!inProgress(t.state) || t.parentUuid === null) continue;
      const parent = this.catalog.snapshots(t.client, t.volume).find((s) => s.uuid === t.parentUuid);
      if (!parent?.altered) continue;
      const e = parentAltered(parent);
      // A waiting stream may not fail directly (server/transfer-moves.ts): it goes back to receiving, which may.
      if (waitingStates.includes(t.state)) await this.catalog.updateTransfer(t.id, { state: 'receiving' });
      await this.catalog.updateTransfer(t.id, { state: 'failed', error: { code: e.code, message: e.message, at: new Date().toISOString() } });
      this.log.warn({ transfer: t.id, volume: t.volume, snapshot: t.snapshot, parent: parent.name }, e.message);
    }
  }

  /** The upload's way of sending (absent: 'v1'), refused when this server's btrfs receive cannot read it. */
  private async receivableSendStream(raw: string | null | undefined): Promise<SendStream> {
    const parsed = SendStreamName.safeParse(raw ?? 'v1');
    if (!parsed.success) {
      throw new ValidationError(`upload metadata ${META.sendStream} is ${JSON.stringify(String(raw).slice(0, 40))}, not one of ${sendStreams.join(', ')}`);
    }
    const version = SEND_STREAM_VERSION[parsed.data];
    const { receiveStreamVersions, progs } = await btrfsFeatures();
    if (!receiveStreamVersions.includes(version)) {
      throw new SnapferryError(
        'unsupported_format',
        `this server's btrfs receive (btrfs-progs ${progs?.text ?? 'of unknown version'}) cannot read send stream version ${version}: push with --send-compressed off, or upgrade btrfs-progs on the server to 6.0 or later`,
        { details: { sendStream: parsed.data, receiveStreamVersions } },
      );
    }
    return parsed.data;
  }

  /**
   * Refuses a UUID the client already holds in another volume: both would have the same Received UUID on disk, and
   * btrfs receive could pick either as a parent or clone source.
   */
  private assertUuidFree(client: string, volume: string, uuid: string): void {
    if (!this.catalog.snapshots(client).some((s) => s.uuid === uuid && s.volume !== volume)) return;
    throw new TransferConflict('snapshot_uuid_taken', `the server already holds a snapshot with UUID ${uuid} outside ${volume}; a snapshot can be pushed to one volume only`, {
      details: { uuid },
    });
  }

  /**
   * At most maxOpenUploads per client: uploads in progress, and every other upload of the client that holds a spool
   * (a failed transfer keeps its own until it expires or is aborted; it counted for nothing, and repeated failures
   * filled the disk).
   */
  private async checkOpenUploads(client: SafeName): Promise<void> {
    const spools = await this.spoolsOf(client);
    const open = new Set([...this.catalog.transfers({ client }).filter((t) => t.state === 'uploading').map((t) => t.id), ...spools.map((s) => s.id)]);
    if (open.size < this.limits.maxOpenUploads) return;
    const keptByFailed = spools.filter((s) => this.catalog.transfer(s.id)?.state === 'failed').length;
    throw tooManyUploads(client, open.size, keptByFailed, this.limits.maxOpenUploads);
  }

  /** The client's uploads in the spool folder, each as its files are on disk (server/spool/usage.ts). */
  private async spoolsOf(client: string): Promise<SpoolFiles[]> {
    return (await spoolsOnDisk(this.layout))
      .filter((s) => this.catalog.transfer(s.id)?.client === client)
      .map((s) => ({ id: s.id, streamBytes: s.streamBytes, otherBytes: s.bytes - s.streamBytes }));
  }

  private async checkFreeSpace(chunkSize: number): Promise<void> {
    const stats = await fs.statfs(this.layout.spool);
    const free = stats.bavail * stats.bsize;
    if (free < MIN_FREE_BYTES + 2 * chunkSize) throw new DiskFullError(null, { freeBytes: free });
  }

  /** Free bytes on the filesystem of the server's root (spool and volumes alike), or null when unreadable. */
  private async freeBytes(): Promise<number | null> {
    const stats = await fs.statfs(this.layout.root).catch(() => null);
    return stats ? stats.bavail * stats.bsize : null;
  }

  /** See ServiceOptions.privilegedFiles. */
  private async checkMount(): Promise<void> {
    const advice = mountAdvice(await mountSafety(this.layout.volumes));
    if (advice === null || this.privilegedFiles === 'refuse') return;
    if (this.privilegedFiles === 'inert-mount') {
      throw new SnapferryError('mount_not_inert', `refusing to start: ${advice}; or start with privilegedFiles 'refuse' or 'allow'`);
    }
    this.log.warn({ volumes: this.layout.volumes }, `${advice}; or set privilegedFiles 'refuse' to refuse such streams`);
  }

  /** The rules a stream must follow to be received (core/wire/sendstream-policy.ts), as data. */
  private receivePolicy(t: TransferRecord): SendStreamPolicy {
    const refuse = this.privilegedFiles === 'refuse';
    return {
      parentUuid: t.parentUuid,
      // Only this volume's own snapshots: they lie inside the directory btrfs receive is chrooted to, so not even a
      // symlink in a clone source's path can lead out of it (clone sources are opened from outside the chroot).
      // Never one changed by hand (server/alterations.ts): its extents may no longer be the ones the stream means.
      cloneSources: this.catalog.snapshots(t.client, t.volume).filter((s) => s.altered === null).map((s) => s.uuid),
      allowDevices: !refuse,
      allowSetuid: !refuse,
    };
  }

  /**
   * What the receive of a transfer must check, or null when the transfer is not to be received. A waiting one is
   * not: only its retry (server/receive-retries.ts) starts it, once it has moved it back to receiving.
   */
  private receiveJob(id: string): ReceiveJob | null {
    const t = this.catalog.transfer(id);
    if (!t || !['uploading', 'receiving', 'verifying'].includes(t.state)) return null;
    const check = () => this.assertUuidFree(t.client, t.volume, t.uuid);
    return {
      id, client: t.client as SafeName, volume: t.volume as SafeName, snapshot: t.snapshot as SafeName,
      uuid: t.uuid, parentUuid: t.parentUuid, chunkSize: t.chunkSize, policy: this.receivePolicy(t),
      toDisk: toDiskMap(this.catalog, t.client),
      // Checked again just before the snapshot takes its name: two uploads of one UUID into two volumes at once.
      confirm: check,
    };
  }

  private async onReceived(id: string, got: ReceivedSnapshot): Promise<void> {
    const t = this.catalog.transfer(id);
    if (!t) return;
    const record: SnapshotRecord = {
      client: t.client, volume: t.volume, name: t.snapshot, uuid: t.uuid, receivedUuid: got.receivedUuid, serverUuid: got.serverUuid,
      parentUuid: t.parentUuid, receivedAt: new Date().toISOString(), rawBytes: got.rawBytes,
      wireBytes: got.wireBytes, transferId: id, createdAt: t.snapshotCreatedAt ?? null, takenAt: t.snapshotTakenAt ?? null,
      altered: null,
    };
    await this.catalog.addSnapshot(record);
    await this.catalog.updateTransfer(id, { state: 'received', error: null, wait: null });
    this.retries.forget(id);
    await this.dropSpool(id);
    this.log.info({ transfer: id, volume: t.volume, snapshot: t.snapshot, path: got.path }, 'snapshot received');
    await this.pruner.pruneVolume(t.client, t.volume);
  }

  /**
   * A receive failed; its partial subvolume is gone. Damaged spool bytes: the upload is cut back there and the
   * client sends them again. The server's own trouble (a full disk, an I/O error): the receive runs again later,
   * and a whole stream waits for it with its spool (server/receive-retries.ts), however long that takes. A stream
   * the server refuses: the transfer fails.
   */
  private async onReceiveFailed(id: string, err: unknown): Promise<void> {
    const t = this.catalog.transfer(id);
    if (!t || !inProgress(t.state)) return;
    const damaged = spoolDamage(err);
    if (damaged !== null) {
      await this.store.rewind(id, damaged);
      await this.catalog.updateTransfer(id, {
        state: 'uploading', wireBytes: null, rawBytes: null, framesVerified: null,
        interruptions: t.interruptions + 1,
        lastInterruption: `${new Date().toISOString()}: the spool was damaged at frame ${damaged}; rewound there for the client to send again`,
      });
      this.log.error({ transfer: id, frame: damaged }, 'spool damaged on disk; upload rewound to the last good frame');
      await this.receives.restart(id, 'the spool was rewound');
      return;
    }
    const e = err instanceof SnapferryError ? err : new SnapferryError('receive_failed', String(err));
    const fault = classifyReceiveFailure(e);
    if (fault !== 'refused') return this.retries.failed(t, fault, e);
    this.retries.forget(id);
    await this.catalog.updateTransfer(id, { state: 'failed', error: { code: e.code, message: e.message, at: new Date().toISOString() } });
    this.log.warn({ transfer: id, code: e.code, err: e.message }, 'receive failed; the spool is kept');
  }

  /**
   * Throws away a transfer that is not being received: an upload in progress or a stream waiting for its receive
   * (spool and all; it becomes aborted), or the spool a failed one kept (it stays failed, with its reason).
   */
  async abort(client: SafeName, id: string): Promise<Transfer> {
    this.ownTransfer(client, id);
    await this.endTransfer(id);
    return this.transfer(client, id);
  }

  /** abort() for a caller already known to own the transfer: the API's abort, and a tus DELETE (termination). */
  private async endTransfer(id: string): Promise<void> {
    const t = this.catalog.transfer(id);
    if (!t) throw new NotFound(`transfer ${id}`);
    if (t.state === 'receiving') {
      throw new TransferConflict('transfer_receiving', `transfer ${id} is being received and can no longer be aborted`);
    }
    if (inProgress(t.state)) {
      await this.receives.stop(id, 'the upload was aborted');
      await this.dropSpool(id);
      this.retries.forget(id);
      await this.catalog.updateTransfer(id, { state: 'aborted' });
    } else if (t.state !== 'received') {
      const freed = await spoolBytes(this.layout, id);
      await this.dropSpool(id);
      if (freed > 0) this.log.info({ transfer: id, state: t.state, freedBytes: freed }, 'spool of a transfer that is over deleted on request');
    }
  }

  /** Spools that nothing will read again (server/orphan-spools.ts), of one client's transfers or of all. */
  async orphanedSpools(client?: string): Promise<OrphanedSpool[]> {
    const all = orphansAmong(await spoolsOnDisk(this.layout), (id) => this.catalog.transfer(id));
    return client === undefined ? all : all.filter((o) => o.client === client);
  }

  /** Deletes the orphaned spools that are due: those of failed transfers after the expiry period, others at once. */
  private async sweepOrphans(): Promise<void> {
    for (const o of dueForDeletion(await this.orphanedSpools(), Date.now(), this.keepFailedMs)) {
      await this.dropSpool(o.id);
      this.log.info({ transfer: o.id, client: o.client, state: o.state, freedBytes: o.bytes }, 'orphaned spool deleted');
    }
    await this.forgetEnded();
  }

  /** Forgets the ended transfers the catalog has kept long enough (server/transfer-history.ts), their spools gone. */
  private async forgetEnded(): Promise<void> {
    const spooled = new Set((await spoolsOnDisk(this.layout)).map((s) => s.id));
    const ids = endedToForget(this.catalog.transfers(), Date.now(), this.history, (id) => spooled.has(id));
    if (ids.length === 0) return;
    await this.catalog.forgetTransfers(new Set(ids));
    this.log.info({ forgotten: ids.length }, 'forgot transfers that ended long enough ago');
  }

  /** Deletes an upload's files, those that are there, and what the spool counted of its arrivals. */
  private async dropSpool(id: string): Promise<void> {
    await this.store.drop(id);
  }

  // --- views ----------------------------------------------------------------------------------------------------

  private ownTransfer(client: SafeName, id: string): TransferRecord {
    const t = this.catalog.transfer(id);
    // Another client's transfer is reported exactly like a missing one, so ids cannot be probed.
    if (!t || t.client !== client) throw new NotFound(`transfer ${id}`);
    return t;
  }

  async transfer(client: SafeName, id: string): Promise<Transfer> {
    return this.withProgress(this.ownTransfer(client, id));
  }

  async transfers(client: SafeName): Promise<Transfer[]> {
    return Promise.all(this.catalog.transfers({ client }).map((t) => this.withProgress(t)));
  }

  private async withProgress(t: TransferRecord): Promise<Transfer> {
    const p: { wireOffset: number; framesVerified: number; rawBytes: number; chain: Buffer | null } =
      t.state === 'uploading'
        ? await this.store.progress(t.id)
        : { wireOffset: t.wireBytes ?? 0, framesVerified: t.framesVerified ?? 0, rawBytes: t.rawBytes ?? 0, chain: null };
    return {
      id: t.id, client: t.client, volume: t.volume, snapshot: t.snapshot, uuid: t.uuid, parentUuid: t.parentUuid,
      state: t.state, createdAt: t.createdAt, updatedAt: t.updatedAt, chunkSize: t.chunkSize,
      wireOffset: p.wireOffset, framesVerified: p.framesVerified, rawBytes: p.rawBytes, rawEstimate: t.rawEstimate,
      chain: p.chain?.toString('hex') ?? '', error: t.error, lastInterruption: t.lastInterruption, interruptions: t.interruptions,
      sendStream: t.sendStream,
      rawReceived: t.state === 'received' ? (t.rawBytes ?? p.rawBytes) : this.rawReceived(t.id),
      wireArrived: this.store.arrived(t.id),
      // The catalog has the free space of the last failure; the caller wants it now, beside what is needed.
      wait: t.wait === null ? null : { ...t.wait, freeBytes: (await this.freeBytes()) ?? t.wait.freeBytes },
      spoolBytes: await spoolBytes(this.layout, t.id),
    };
  }

  /** Raw bytes fed to the transfer's running `btrfs receive` so far (0 when none runs, as once it has finished). */
  rawReceived(id: string): number {
    return this.receives.rawFed(id);
  }

  isUploading(id: string): boolean {
    return this.catalog.transfer(id)?.state === 'uploading';
  }

  /** The verified frames' records, for a client whose regenerated stream no longer matches the chain. */
  async frames(client: SafeName, id: string, from: number, limit: number): Promise<FrameRecord[]> {
    const t = this.ownTransfer(client, id);
    if (t.state !== 'uploading') return [];
    const records = await this.store.frames(id, from, Math.min(limit, MAX_FRAMES_PER_PAGE));
    return records
      .filter((r) => r.kind === 'data')
      .map((r) => ({ index: r.index, wireEnd: r.wireEnd, rawEnd: r.rawEnd, chain: r.chain.toString('hex') }));
  }

  /**
   * Cuts an upload back to its first `frames` frames (docs/design.md, "Resume"): the client found that its regenerated
   * stream differs from frame `frames` on. Refused while another request of the upload is in flight.
   */
  async rewind(client: SafeName, id: string, session: string, frames: number): Promise<Transfer> {
    const t = this.ownTransfer(client, id);
    if (t.state !== 'uploading') {
      throw new TransferConflict('transfer_not_uploading', `transfer ${id} is ${t.state}; only an upload in progress can be rewound`);
    }
    this.leases.acquire(id, session);
    if (this.leases.inFlight(id)) {
      throw new TransferConflict('transfer_locked', `transfer ${id} has a request in flight; try again`, { retryable: true });
    }
    const before = await this.store.progress(id);
    await this.store.rewind(id, frames);
    // The receive may have read past the new end: it starts again from the spool's first byte.
    await this.receives.restart(id, 'the upload was rewound');
    await this.catalog.updateTransfer(id, {
      lastInterruption: `${new Date().toISOString()}: rewound from frame ${before.framesVerified} to ${frames}: the client's stream differs from there`,
    });
    this.log.warn({ transfer: id, from: before.framesVerified, to: frames }, 'upload rewound');
    return this.transfer(client, id);
  }

  /** A PATCH ended before its body did: the link was cut. Kept so status can say when and where, and logged. */
  async noteInterruption(id: string, offset: number): Promise<void> {
    const t = this.catalog.transfer(id);
    if (!t || t.state !== 'uploading') return;
    const p = await this.store.progress(id);
    await this.catalog.updateTransfer(id, {
      interruptions: t.interruptions + 1,
      lastInterruption: `${new Date().toISOString()}: cut at byte ${offset} (after ${p.framesVerified} verified frames)`,
    });
    this.resumable.add(id);
    this.log.info({ transfer: id, volume: t.volume, snapshot: t.snapshot, wireOffset: offset, framesVerified: p.framesVerified }, 'upload cut; its verified frames are kept');
  }

  /**
   * A PATCH begins: when it goes on with an upload that was cut, or one this process has not seen before (it was
   * begun before a restart), the client resumed it: one info line, as for the cut.
   */
  noteUploadRequest(id: string, offset: number): void {
    const resumed = this.resumable.delete(id) || (!this.patched.has(id) && offset > 0);
    // A few ids per upload this process served; bounded by the transfers it saw.
    this.patched.add(id);
    if (!resumed) return;
    const t = this.catalog.transfer(id);
    this.log.info({ transfer: id, volume: t?.volume, snapshot: t?.snapshot, wireOffset: offset }, 'upload resumed');
  }

  /**
   * An admin may delete a received snapshot by hand while the server runs; a client must then not pick it as a
   * parent. Listing a volume checks that each snapshot is still a subvolume (two cheap syscalls each).
   */
  private async refreshVolume(client: SafeName, volume: SafeName): Promise<void> {
    for (const s of this.catalog.snapshots(client, volume)) {
      if (!(await btrfs.isSubvolume(this.layout.snapshotPath(client, volume, s.name as SafeName)))) {
        await this.catalog.removeSnapshot(s, 'deleted from disk');
        this.log.warn({ volume, snapshot: s.name }, 'snapshot gone from disk; removed from the catalog');
      }
    }
  }

  async snapshots(client: SafeName, volume: SafeName): Promise<{ snapshots: Snapshot[]; removed: ReturnType<Catalog['removed']> }> {
    await this.refreshVolume(client, volume);
    const snapshots = this.catalog
      .snapshots(client, volume)
      .sort(byTaken)
      // Where it is on disk is the server's own business (server/uuid-namespace.ts).
      .map(({ client: _c, volume: _v, receivedUuid: _r, ...s }) => s);
    return { snapshots, removed: this.catalog.removed(client, volume) };
  }

  async volumes(client: SafeName): Promise<{ name: string; snapshots: number; newest: Snapshot | null; rawBytes: number; altered: string[] }[]> {
    const out = [];
    for (const name of this.catalog.volumes(client)) {
      const list = (await this.snapshots(client, name as SafeName)).snapshots;
      const altered = list.filter((s) => s.altered !== null).map((s) => s.name);
      out.push({ name, snapshots: list.length, newest: list.at(-1) ?? null, rawBytes: list.reduce((n, s) => n + s.rawBytes, 0), altered });
    }
    return out;
  }

  async status(): Promise<Status> {
    const transfers: Record<string, number> = {};
    for (const t of this.catalog.transfers()) transfers[t.state] = (transfers[t.state] ?? 0) + 1;
    const stats = await fs.statfs(this.layout.root).catch(() => null);
    const all = this.catalog.allSnapshots();
    return {
      service: 'snapferry', version: VERSION, uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      freeBytes: stats ? stats.bavail * stats.bsize : null,
      volumes: new Set(all.map((s) => `${s.client}/${s.volume}`)).size, snapshots: all.length, transfers,
      receiveStreamVersions: [...(await btrfsFeatures()).receiveStreamVersions],
      orphanedSpools: countSpools(await this.orphanedSpools()),
    };
  }
}

/** How many spools, and their bytes, as GET /v1/status shows them. */
export function countSpools(spools: readonly OrphanedSpool[]): { count: number; bytes: number } {
  return { count: spools.length, bytes: spools.reduce((n, s) => n + s.bytes, 0) };
}

/** The frame index where a spool failed verification during the receive, or null for any other failure. */
function spoolDamage(err: unknown): number | null {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    if (e instanceof FrameError) return typeof e.details.frameIndex === 'number' ? e.details.frameIndex : 0;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

/** The metadata's chunk size, or the caller's mistake (400, not retryable): never a RangeError answered 500. */
function parseChunkSize(raw: string | null | undefined): number {
  try {
    return validateChunkSize(Number(raw));
  } catch (err) {
    throw new ValidationError(`metadata ${META.chunkSize}: ${(err as Error).message}`, { details: { chunkSize: raw ?? null } });
  }
}
