/**
 * What the API shows of an archive, as server/views.ts is a btrfs server's: transfers, snapshots, volumes, status
 * and what /metrics counts, each read from the bucket, so that every instance answers the same (archive-facts.ts).
 */
import type { SafeName } from '../../core/names.ts';
import type { FrameRecord, Status, Transfer } from '../../core/protocol.ts';
import { VERSION } from '../../core/version.ts';
import { CHAIN_ZERO } from '../../core/wire/index.ts';
import { volumeSummary, type ClientFacts, type SnapshotList, type VolumeSummary } from '../views.ts';
import type { SpoolProgress } from '../spool/progress.ts';
import type { ObjectStore } from './object-store.ts';
import { archiveClients, archiveFacts, uploadCounts } from './archive-facts.ts';
import { STORED_STREAM_VERSIONS } from './archive-admission.ts';
import { readUploadState, transferView } from './archive-transfer.ts';
import { mayExtend, type ChainRules } from './chains.ts';
import { storedFrameRecords } from './stored-stream.ts';
import type { StoredSealings } from './stream-sealing.ts';
import type { UploadOwners } from './upload-owners.ts';
import { progressOf, uploadFolder, type SegmentRecord } from './upload-state.ts';
import { asArchived, catalogVolumes, isLive, readCatalog, snapshotView, type CatalogEntry } from './volume-catalog.ts';

/**
 * Every archive request ends in a stored segment and its record in the bucket (segment-append.ts), which the client
 * waits for before its next PATCH: at 8 MiB PATCHes a push into the bench's bucket ran at half the rate of 16 MiB
 * (16.6 against 32.5 MB/s) and serve spent 1.6 times the CPU (issue 22, docs/performance.md).
 */
export const ARCHIVE_PATCH_BYTES = 16 * 1024 * 1024;

export interface ArchiveViewsDeps {
  objects: ObjectStore;
  rules: ChainRules;
  /** How each stored stream is sealed: listed, so that a push takes only a parent sealed as it is. */
  sealings: StoredSealings;
  owners: UploadOwners;
  /** Bytes of upload `id` that reached this instance (segment-uploads.ts arrived). */
  arrived(id: string): number;
  /** Records a complete stream not yet in its volume's catalog (archive-lifecycle.ts finish). */
  finish(id: string, segments: readonly SegmentRecord[]): Promise<CatalogEntry | undefined>;
}

export class ArchiveViews {
  /** Clients this instance has seen (an admin's listings; the bucket is not listed on every request). */
  private readonly seen = new Set<SafeName>();
  private readonly startedAt = Date.now();

  constructor(private readonly deps: ArchiveViewsDeps) {}

  /** A client this instance met (a new upload of it), for clients(). */
  saw(client: SafeName): void {
    this.seen.add(client);
  }

  async transfer(client: SafeName, id: string): Promise<Transfer> {
    const { objects, owners } = this.deps;
    const record = await owners.owned(client, id);
    const state = await readUploadState(objects, id);
    let stored = (await readCatalog(objects, client, record.volume as SafeName)).find((s) => s.uuid === record.uuid && s.transferId === id);
    if (!stored && state && state.tombstone === null && progressOf(state).complete) stored = await this.deps.finish(id, state.segments);
    return transferView(record, state, stored, this.deps.arrived(id));
  }

  async transfers(client: SafeName): Promise<Transfer[]> {
    const { objects, owners } = this.deps;
    const out: Transfer[] = [];
    for await (const o of objects.list('uploads/')) {
      const m = /^uploads\/([0-9a-f]{32})\/transfer\.json$/.exec(o.key);
      if (!m) continue;
      await owners.lookUp(m[1]!);
      if (owners.of(m[1]!) === client) out.push(await this.transfer(client, m[1]!));
    }
    return out;
  }

  async frames(client: SafeName, id: string, from: number, limit: number): Promise<FrameRecord[]> {
    const { objects, owners } = this.deps;
    const record = await owners.owned(client, id);
    const state = await readUploadState(objects, id);
    if (!state) return [];
    const segments = state.segments.map((s) => ({ ...s, key: `${uploadFolder(id)}${s.name}` }));
    return storedFrameRecords(objects, segments, record.chunkSize, from, limit);
  }

  async snapshots(client: SafeName, volume: SafeName): Promise<SnapshotList> {
    this.seen.add(client);
    // A stream retention is taking out is no longer offered, as a snapshot or as a parent.
    const streams = (await readCatalog(this.deps.objects, client, volume)).filter(isLive);
    const now = new Date();
    const archived = asArchived(streams);
    // Unreadable (an older entry whose stream the store does not give now): unsaid, which a client takes as unknown,
    // a parent of a plain push only (core/sealing.ts), and the upload's frame 0 is checked again (stream-sealing.ts).
    const sealings = await Promise.all(streams.map((s) => this.deps.sealings.of(s).catch(() => undefined)));
    return {
      snapshots: streams.map((s, i) => snapshotView(s, mayExtend(archived, s.uuid, now, this.deps.rules).ok, now, sealings[i])),
      removed: [],
      patchBytes: ARCHIVE_PATCH_BYTES,
    };
  }

  async volumes(client: SafeName): Promise<VolumeSummary[]> {
    const out: VolumeSummary[] = [];
    for (const name of await catalogVolumes(this.deps.objects, client)) {
      // A chain that is full (its snapshots' `altered`) is the archive's rule, not a change by hand.
      out.push(volumeSummary(name, (await this.snapshots(client, name as SafeName)).snapshots, []));
    }
    return out;
  }

  /**
   * The archive's status, read from the bucket (archive-facts.ts). The whole archive's also learns every client the
   * bucket knows, for the admin's listings that follow (clients()).
   */
  async status(client?: SafeName): Promise<Status> {
    const { objects } = this.deps;
    if (client === undefined) for (const name of await archiveClients(objects)) this.seen.add(name as SafeName);
    let volumes = 0;
    let snapshots = 0;
    const transfers: Record<string, number> = {};
    for (const c of client === undefined ? this.clients() : [client]) {
      const counts = await uploadCounts(objects, c);
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
    return archiveFacts(this.deps.objects, client, this.deps.rules, (id) => this.deps.arrived(id));
  }

  /** An upload's verified progress, from its state.json. */
  async progress(id: string): Promise<SpoolProgress> {
    const state = await readUploadState(this.deps.objects, id);
    return state ? progressOf(state) : { wireOffset: 0, framesVerified: 0, rawBytes: 0, chain: CHAIN_ZERO, complete: false };
  }
}
