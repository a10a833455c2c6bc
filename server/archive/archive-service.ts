/**
 * Archive mode's core (docs/archive.md): what server/app.ts asks of a server (server/app-service.ts), over a bucket
 * instead of a btrfs root. Uploads go through the tus adapter into SegmentUploads (the spool in the bucket); when
 * an upload's end frame is stored, its manifest is written once and the volume's catalog records it by
 * compare-and-swap; the views read the catalog, and a restore serves the stored frames. Nothing lives on local disk,
 * and nothing in memory that another instance needs: any instance answers any request.
 */
import { SnapferryError } from '../../core/errors.ts';
import type { SafeName } from '../../core/names.ts';
import type { FrameRecord, Status, Transfer } from '../../core/protocol.ts';
import { VERSION } from '../../core/version.ts';
import type { AppService } from '../app-service.ts';
import { UploadLeases } from '../leases.ts';
import { uploadLimits, type UploadLimits } from '../upload-limits.ts';
import { QuotaUploads } from '../upload-store/quota.ts';
import type { UploadStore } from '../upload-store/store.ts';
import { NotFound } from '../transfers/errors.ts';
import { parseCreation, type CreationMetadata } from '../transfers/creation.ts';
import type { ClientFacts, SnapshotList, VolumeSummary } from '../views.ts';
import type { SpoolProgress } from '../spool/progress.ts';
import type { RestoreRequest, RestoreStream } from '../restore.ts';
import type { Logger } from '../log.ts';
import type { ObjectStore } from './object-store.ts';
import { ensureFormat } from './format.ts';
import { bucketLeases } from './upload-lease.ts';
import { ARCHIVE_LEASE_MS, assertNotLeasedByOther } from './lease.ts';
import { admitUpload, settle, withdrawUpload } from './client-uploads.ts';
import { archiveQuota } from './archive-quota.ts';
import { archiveClients, archiveFacts, uploadCounts } from './archive-facts.ts';
import { SegmentUploads } from './segment-uploads.ts';
import type { SegmentRecord } from './upload-state.ts';
import { progressOf, uploadFolder } from './upload-state.ts';
import { DEFAULT_CHAIN_RULES, mayExtend, type ChainRules } from './chains.ts';
import { asArchived, catalogVolumes, isLive, readCatalog, recordStream, snapshotView, type CatalogEntry } from './volume-catalog.ts';
import { writeManifest, type ManifestSegment } from './manifest.ts';
import { readTransferRecord, readUploadState, transferView, writeTransferRecord, type TransferRecord } from './archive-transfer.ts';
import { storedFrameRecords } from './stored-stream.ts';
import { openArchiveRestore } from './archive-restore.ts';
import { CHAIN_ZERO } from '../../core/wire/index.ts';
import { DEFAULT_TRANSFER_HISTORY } from '../transfer-history.ts';
import { ARCHIVE_UPKEEP_MS, ArchiveUpkeep, type ArchiveRetentionLookup } from './archive-upkeep.ts';

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

/** Send stream versions an archive stores: it receives nothing, so the restoring client's btrfs decides. */
const STORED_STREAM_VERSIONS = [1, 2];

export class ArchiveService implements AppService {
  private readonly objects: ObjectStore;
  private readonly uploads: SegmentUploads;
  /** What tus writes through: the uploads in the bucket, inside the client's quota (server/upload-store/quota.ts). */
  private readonly guarded: UploadStore;
  private readonly rules: ChainRules;
  private readonly limits: Readonly<UploadLimits>;
  /**
   * Which push (session) has a request on each upload in this instance now. The bucket's lease is this instance's,
   * so it admits any request that reaches here; this keeps a second push of one upload out while the first one's
   * request runs, with the transfer_locked another instance would answer. Only while a request runs: between
   * requests the bucket's lease is released and any instance admits either push.
   */
  private readonly sessions: UploadLeases;
  /** Owners of the uploads this instance has looked up: an owner never changes, so the cache never goes stale. */
  private readonly owners = new Map<string, string>();
  /** Clients this instance has seen (an admin's listings; the bucket is not listed on every request). */
  private readonly seen = new Set<SafeName>();
  private readonly startedAt = Date.now();
  /** Retention and the sweep of ended uploads, for the whole bucket (any instance runs it). */
  readonly upkeep: ArchiveUpkeep;
  /** Retention passes started after a stream was stored, awaited by close(). */
  private readonly pruning = new Set<Promise<unknown>>();

  constructor(private readonly options: ArchiveServiceOptions) {
    this.objects = options.objects;
    this.rules = options.chains ?? DEFAULT_CHAIN_RULES;
    this.limits = uploadLimits(options.limits);
    this.sessions = new UploadLeases(options.leaseMs ?? ARCHIVE_LEASE_MS);
    this.upkeep = new ArchiveUpkeep({
      objects: this.objects, log: options.log, retention: options.retention ?? (() => ({})),
      keepEndedMs: options.keepEndedMs ?? DEFAULT_TRANSFER_HISTORY.keepForMs,
    });
    this.uploads = new SegmentUploads({
      objects: this.objects, leases: bucketLeases(this.objects, options.holder, options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}), expireAfterMs: options.expireAfterMs ?? 0,
      // A sealed stream is stored as it is (the archive verifies ciphertext and never needs a key), as is a plain one.
      sink: (id) => ({ start: () => undefined, complete: async (_p, segments) => void (await this.finish(id, segments)) }),
    });
    this.guarded = new QuotaUploads(this.uploads, archiveQuota({
      objects: this.objects, limits: this.limits, log: options.log,
      // Known from the request's ownership check (lookUpUpload) on every tus request: no read.
      clientOf: async (id) => (this.owners.get(id) ?? (await this.record(id)).client) as SafeName,
      drop: (id) => this.endUpload(id),
    }), () => 0);
  }

  /** Checks (or creates) the archive's format.json before anything else is read or written. */
  async start(): Promise<void> {
    await ensureFormat(this.objects, this.options.where);
    const every = this.options.upkeepEveryMs ?? ARCHIVE_UPKEEP_MS;
    if (every > 0) this.upkeep.start(every);
  }

  async close(): Promise<void> {
    await this.upkeep.stop();
    await Promise.all(this.pruning);
  }

  uploadStore(): UploadStore {
    return this.guarded;
  }

  /**
   * A new upload: its metadata parsed as a btrfs server parses it, and the chain rule applied (chains.ts): an
   * incremental needs its parent in the archive, and a parent whose chain is full takes none.
   */
  async beginTransfer(client: SafeName, id: string, metadata: CreationMetadata): Promise<TransferRecord> {
    const c = parseCreation(metadata, { receiveStreamVersions: STORED_STREAM_VERSIONS, progs: null });
    const streams = await readCatalog(this.objects, client, c.volume);
    const present = streams.find((s) => s.uuid === c.uuid);
    if (present) {
      const why = isLive(present) ? '' : ' (its chain is being deleted by the retention policy: push it again once that is done)';
      throw new SnapferryError('snapshot_present', `the archive already holds ${c.volume}/${c.snapshot}${why}`, { details: { volume: c.volume, uuid: c.uuid } });
    }
    if (c.parentUuid !== null) {
      this.assertParent(streams, c);
      const extend = mayExtend(asArchived(streams.filter(isLive)), c.parentUuid, new Date(), this.rules);
      if (!extend.ok) {
        throw new SnapferryError('chain_full', `${c.snapshot} cannot be stored as an incremental: ${extend.reason}; push it in full (the client's planner does when it reads the snapshot list again)`, {
          details: { volume: c.volume, parentUuid: c.parentUuid },
        });
      }
    }
    // The client's rate and open uploads, across instances (client-uploads.ts); its bytes are the quota wrapper's.
    await admitUpload(this.objects, client, id, this.limits);
    const record = await writeTransferRecord(this.objects, client, id, c, new Date().toISOString()).catch(async (err: unknown) => {
      await withdrawUpload(this.objects, client, id).catch(() => undefined);
      throw err;
    });
    // Read again after the record is in the bucket: retention marks a chain, then lists uploads (archive-retention.ts),
    // so either it finds this record and keeps the parent's chain, or this read finds the mark. The record left by a
    // refusal here has no state.json and goes with the sweep of abandoned uploads (upload-sweep.ts).
    if (c.parentUuid !== null) this.assertParent(await readCatalog(this.objects, client, c.volume), c);
    this.owners.set(id, client);
    this.seen.add(client);
    return record;
  }

  /** An incremental's parent must be a live stream of the archive (not one whose chain retention is taking out). */
  private assertParent(streams: readonly CatalogEntry[], c: { volume: string; snapshot: string; parentUuid: string | null }): void {
    if (streams.some((s) => s.uuid === c.parentUuid && isLive(s))) return;
    throw new SnapferryError('parent_missing', `the archive holds no snapshot ${c.parentUuid} in ${c.volume} to store ${c.snapshot} as an incremental on; push it in full`, {
      details: { volume: c.volume, parentUuid: c.parentUuid },
    });
  }

  async lookUpUpload(id: string): Promise<void> {
    if (this.owners.has(id)) return;
    // Not an id of ours: nothing to look up, and the ownership check answers 404.
    if (!/^[0-9a-f]{32}$/.test(id)) return;
    const record = await readTransferRecord(this.objects, id);
    if (record) this.owners.set(id, record.client);
  }

  transferOwner(id: string): string | undefined {
    return this.owners.get(id);
  }

  /**
   * The stream is complete: its manifest (write-once), then its entry in the volume's catalog (CAS). Either may have
   * been done by an earlier try; both are idempotent, so a transfer found complete and not catalogued is finished
   * again (transfer()).
   */
  private async finish(id: string, segments: readonly SegmentRecord[]): Promise<CatalogEntry | undefined> {
    const record = await this.record(id);
    const end = segments.at(-1)!;
    const manifestSegments: ManifestSegment[] = segments.map((s) => ({
      key: `${uploadFolder(id)}${s.name}`, first: s.first, last: s.last, wireStart: s.wireStart, wireEnd: s.wireEnd, rawEnd: s.rawEnd, chain: s.chain, end: s.end,
    }));
    const manifest = await writeManifest(this.objects, {
      version: 1, client: record.client, volume: record.volume, snapshot: record.snapshot, uuid: record.uuid, parentUuid: record.parentUuid,
      transferId: id, chunkSize: record.chunkSize, frames: end.last, wireBytes: end.wireEnd, rawBytes: end.rawEnd, chain: end.chain, segments: manifestSegments,
    });
    const entry: CatalogEntry = {
      name: record.snapshot, uuid: record.uuid, parentUuid: record.parentUuid, transferId: id, chunkSize: record.chunkSize,
      rawBytes: end.rawEnd, wireBytes: end.wireEnd, storedAt: new Date().toISOString(), createdAt: record.snapshotCreatedAt,
      takenAt: record.snapshotTakenAt, manifest,
    };
    // Not recorded: retention deleted this upload's stream after this instance read it complete (archive-retention.ts).
    if (!(await recordStream(this.objects, record.client as SafeName, record.volume as SafeName, entry))) return undefined;
    // Its open-upload slot is free now; a later look would free it too (client-uploads.ts settle).
    await settle(this.objects, record.client as SafeName).catch(() => undefined);
    this.options.log.info({ transferId: id, volume: record.volume, snapshot: record.snapshot, wireBytes: end.wireEnd }, 'stream stored in the archive');
    // As a btrfs server prunes after each receive; in the background, and a failure is only logged.
    const pass = this.upkeep.pruneVolume(record.client as SafeName, record.volume as SafeName).finally(() => this.pruning.delete(pass));
    this.pruning.add(pass);
    return entry;
  }

  async transfer(client: SafeName, id: string): Promise<Transfer> {
    const record = await this.owned(client, id);
    const state = await readUploadState(this.objects, id);
    let stored = (await readCatalog(this.objects, client, record.volume as SafeName)).find((s) => s.uuid === record.uuid && s.transferId === id);
    if (!stored && state && state.tombstone === null && progressOf(state).complete) stored = await this.finish(id, state.segments);
    return transferView(record, state, stored, this.uploads.arrived(id));
  }

  async transfers(client: SafeName): Promise<Transfer[]> {
    const out: Transfer[] = [];
    for await (const o of this.objects.list('uploads/')) {
      const m = /^uploads\/([0-9a-f]{32})\/transfer\.json$/.exec(o.key);
      if (!m) continue;
      await this.lookUpUpload(m[1]!);
      if (this.owners.get(m[1]!) === client) out.push(await this.transfer(client, m[1]!));
    }
    return out;
  }

  async frames(client: SafeName, id: string, from: number, limit: number): Promise<FrameRecord[]> {
    const record = await this.owned(client, id);
    const state = await readUploadState(this.objects, id);
    if (!state) return [];
    const segments = state.segments.map((s) => ({ ...s, key: `${uploadFolder(id)}${s.name}` }));
    return storedFrameRecords(this.objects, segments, record.chunkSize, from, limit);
  }

  async abort(client: SafeName, id: string): Promise<Transfer> {
    await this.owned(client, id);
    const t = await this.transfer(client, id);
    if (t.state === 'received' || t.state === 'aborted' || t.state === 'failed') return t;
    await this.endUpload(id);
    return this.transfer(client, id);
  }

  /** Terminates an upload (its state a tombstone, its segments gone) and frees its client's slot. */
  private async endUpload(id: string): Promise<void> {
    const client = (await this.record(id)).client as SafeName;
    try {
      await this.uploads.remove(id);
    } catch (err) {
      // Refused at its creation (a declared length over the quota) before its state.json was written: no upload to
      // end, only its entry to drop.
      if (!(err instanceof SnapferryError && err.code === 'not_found') || (await readUploadState(this.objects, id)) !== null) throw err;
      await withdrawUpload(this.objects, client, id);
      return;
    }
    await settle(this.objects, client).catch(() => undefined);
  }

  /** Segments are write-once and whole: an upload is not cut back (a push whose stream changed starts a new one). */
  async rewind(client: SafeName, id: string): Promise<Transfer> {
    await this.owned(client, id);
    throw new SnapferryError('rewind_unsupported', `an archive upload cannot be cut back; abort transfer ${id} and push the snapshot again`, {
      details: { transferId: id },
    });
  }

  async snapshots(client: SafeName, volume: SafeName): Promise<SnapshotList> {
    this.seen.add(client);
    // A stream retention is taking out is no longer offered, as a snapshot or as a parent.
    const streams = (await readCatalog(this.objects, client, volume)).filter(isLive);
    const now = new Date();
    const archived = asArchived(streams);
    return { snapshots: streams.map((s) => snapshotView(s, mayExtend(archived, s.uuid, now, this.rules).ok, now)), removed: [] };
  }

  async volumes(client: SafeName): Promise<VolumeSummary[]> {
    const out: VolumeSummary[] = [];
    for (const name of await catalogVolumes(this.objects, client)) {
      const list = (await this.snapshots(client, name as SafeName)).snapshots;
      out.push({ name, snapshots: list.length, newest: list.at(-1) ?? null, rawBytes: list.reduce((n, s) => n + s.rawBytes, 0), altered: [] });
    }
    return out;
  }

  /**
   * The archive's status, read from the bucket, so that every instance answers the same (archive-facts.ts). The
   * whole archive's also learns every client the bucket knows, for the admin's listings that follow (clients()).
   */
  async status(client?: SafeName): Promise<Status> {
    if (client === undefined) for (const name of await archiveClients(this.objects)) this.seen.add(name as SafeName);
    let volumes = 0;
    let snapshots = 0;
    const transfers: Record<string, number> = {};
    for (const c of client === undefined ? this.clients() : [client]) {
      const counts = await uploadCounts(this.objects, c);
      for (const v of await this.volumes(c)) {
        volumes++;
        snapshots += v.snapshots;
        // Each stored stream is the transfer that stored it.
        counts.received += v.snapshots;
      }
      for (const [state, n] of Object.entries(counts)) if (n > 0) transfers[state] = (transfers[state] ?? 0) + n;
    }
    return {
      service: 'snapferry', version: VERSION, uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000), freeBytes: null,
      volumes, snapshots, transfers, receiveStreamVersions: STORED_STREAM_VERSIONS, orphanedSpools: { count: 0, bytes: 0 },
    };
  }

  /**
   * The clients this instance has seen, and every client the bucket held at the last status() of the whole archive
   * (a scrape of /metrics asks it first): a list the routes need at once, and the bucket is not listed on each.
   */
  clients(): SafeName[] {
    return [...this.seen].sort();
  }

  clientFacts(client: SafeName): Promise<ClientFacts> {
    return archiveFacts(this.objects, client, this.rules, (id) => this.uploads.arrived(id));
  }

  /** The stored stream, as stored (archive-restore.ts). */
  restoreStream(req: RestoreRequest): Promise<RestoreStream> {
    return openArchiveRestore(this.objects, req);
  }

  /**
   * A request's life on an upload. Across instances the bucket's lease (segment-uploads.ts) keeps two writers apart;
   * within this one, `sessions` refuses another push's request while one runs (transfer_locked, Retry-After), and
   * admits the same push at once (its request after a cut, while the cut one is still being taken apart).
   */
  enterRequest(id: string, session: string): void {
    this.sessions.acquire(id, session);
    this.sessions.enter(id);
  }
  leaveRequest(id: string): void {
    this.sessions.leave(id);
    // Only a running request holds an upload here: nothing is kept of one that ended (the bucket's lease is free too).
    if (!this.sessions.inFlight(id)) this.sessions.release(id);
  }
  /**
   * Another instance's live lease refuses a PATCH here, before tus compares its offset: a second push learns
   * transfer_locked with when to come back, as from a btrfs server, not an offset_mismatch that sends it on to race.
   */
  noteUploadRequest(id: string): Promise<void> {
    return assertNotLeasedByOther(this.objects, id, this.options.holder);
  }
  isUploading(): boolean {
    return false;
  }

  async progress(id: string): Promise<SpoolProgress> {
    const state = await readUploadState(this.objects, id);
    return state ? progressOf(state) : { wireOffset: 0, framesVerified: 0, rawBytes: 0, chain: CHAIN_ZERO, complete: false };
  }

  async noteInterruption(): Promise<void> {}

  /** The transfer record of `id` if `client` owns it; another client's is reported as missing, like a missing one. */
  private async owned(client: SafeName, id: string): Promise<TransferRecord> {
    const record = /^[0-9a-f]{32}$/.test(id) ? await readTransferRecord(this.objects, id) : null;
    if (!record || record.client !== client) throw new NotFound(`transfer ${id}`);
    return record;
  }

  private async record(id: string): Promise<TransferRecord> {
    const record = await readTransferRecord(this.objects, id);
    if (!record) throw new SnapferryError('archive_object_corrupt', `upload ${id} has no transfer record in the archive`, { details: { transferId: id } });
    return record;
  }
}
