/**
 * What the API shows, in one place: a transfer with its live progress, the lists of transfers, snapshots and
 * volumes, the status, a transfer's frames, the facts /metrics counts, and what each caller may see of them. It
 * reads; it changes nothing but the catalog's view of snapshots deleted by hand (refreshVolume). Fed by the
 * replication service (server/replication.ts), which owns the catalog, the spool and the receives.
 *
 * Who sees what: a client sees only its own namespace; everything of another client answers exactly like something
 * that does not exist, so ids and names cannot be probed. An admin sees every client's, each item tagged with the
 * `client` it belongs to, and may narrow any list with `?client=NAME`.
 */
import type { SafeName } from '../core/names.ts';
import { inProgress, MAX_FRAMES_PER_PAGE, pushedSizeKnown, type FrameRecord, type Snapshot, type Status, type Transfer } from '../core/protocol.ts';
import { VERSION } from '../core/version.ts';
import type { Catalog, RemovedRecord, SnapshotRecord, TransferRecord } from './catalog.ts';
import { clientNamed, type Caller } from './auth.ts';
import type { OrphanedSpool } from './orphan-spools.ts';
import { byTaken } from './snapshot-time.ts';
import { NotFound } from './transfers/errors.ts';

/** Stands for "every client" where a single client's name would be (the admin's VolumeList.client). */
export const ALL_CLIENTS = '*';

export type CatalogReader = Pick<Catalog, 'transfer' | 'transfers' | 'snapshots' | 'allSnapshots' | 'removed'>;

/** What the views read, handed in by the service. */
export interface ViewSource {
  catalog: CatalogReader;
  /** Verified progress of an upload in progress (its frame index). */
  progress(id: string): Promise<{ wireOffset: number; framesVerified: number; rawBytes: number; chain: Buffer }>;
  /** The frame index's records from `from`, at most `limit`. */
  frameRecords(id: string, from: number, limit: number): Promise<{ kind: string; index: number; wireEnd: number; rawEnd: number; chain: Buffer }[]>;
  /** Bytes that arrived for the upload (verified or not). */
  arrived(id: string): number;
  /** Bytes of the framed stream the spool holds of an upload in progress, the part of a frame past its verified ones included. */
  held(id: string): Promise<number>;
  /** Whether a push holds the upload right now (its lease, server/leases.ts). */
  heldByPush(id: string): boolean;
  /** Raw bytes fed to the transfer's running `btrfs receive`. */
  rawReceived(id: string): number;
  freeBytes(): Promise<number | null>;
  /**
   * The wait of a whole stream whose end the catalog could not record yet (a full disk), shown in place of the
   * state its record says (server/receive-retries.ts unrecordedEnd); null for any other transfer.
   */
  unrecordedEnd(t: Pick<TransferRecord, 'id' | 'state'>, freeBytes: number | null): Pick<Transfer, 'state' | 'wait' | 'error'> | null;
  spoolBytes(id: string): Promise<number>;
  orphanedSpools(client?: string): Promise<OrphanedSpool[]>;
  /** Drops from the catalog the client's snapshots in `volume` that are gone from disk. */
  refreshVolume(client: SafeName, volume: SafeName): Promise<void>;
  receiveStreamVersions(): Promise<readonly number[]>;
  startedAt: number;
}

export interface SnapshotList {
  snapshots: Snapshot[];
  removed: RemovedRecord[];
  /** The PATCH body this server takes best (core/protocol SnapshotList.patchBytes). */
  patchBytes: number;
}

/**
 * A server on btrfs: at 16 MiB both sides ran many more of V8's full collections than at 8 (a 1 GB push, against
 * 8 MiB: serve 1.1 and the client 0.4 CPU s per GB more, push about 10 MB more peak RSS), for one turnaround (round
 * trip and fsync) less per 16 MiB (issue 22, docs/performance.md). Fewer than 8 MiB cost serve more: raw frames sent
 * one to a PATCH (4 MiB) took serve 11.7-12.8 CPU s per GB against 9.0-10.8 two to a PATCH (session 23).
 */
export const SPOOL_PATCH_BYTES = 8 * 1024 * 1024;

export interface VolumeSummary {
  name: string;
  snapshots: number;
  newest: Snapshot | null;
  rawBytes: number;
  altered: string[];
  sizeUnknown: string[];
}

/** A volume as GET /v1/volumes lists it, from its snapshots oldest first (core/protocol Volume). */
export function volumeSummary(name: string, list: readonly Snapshot[], altered: string[]): VolumeSummary {
  return {
    name, snapshots: list.length, newest: list.at(-1) ?? null, rawBytes: list.reduce((n, s) => n + s.rawBytes, 0), altered,
    sizeUnknown: list.filter((s) => !pushedSizeKnown(s)).map((s) => s.name),
  };
}

/** What /metrics counts of one client (server/metrics.ts). */
export interface ClientFacts {
  volumes: { name: string; snapshots: SnapshotRecord[] }[];
  transfers: { record: TransferRecord; wireBytes: number; spoolBytes: number; rawReceived: number }[];
  orphanedSpools: OrphanedSpool[];
  /**
   * Transfers that ended without a record to list, only counted: an archive keeps a count of its aborted uploads and
   * of its failed ones by error code (server/archive/client-uploads.ts), not each one's record. A btrfs server lists
   * them all.
   */
  unlisted?: { aborted: number; failedByCode: Record<string, number> };
}

export class Views {
  constructor(private readonly src: ViewSource) {}

  /** The transfer `id` of `client`; another client's is reported exactly like a missing one. */
  own(client: SafeName, id: string): TransferRecord {
    const t = this.src.catalog.transfer(id);
    if (!t || t.client !== client) throw new NotFound(`transfer ${id}`);
    return t;
  }

  async transfer(client: SafeName, id: string): Promise<Transfer> {
    return this.withProgress(this.own(client, id));
  }

  async transfers(client: SafeName): Promise<Transfer[]> {
    return Promise.all(this.src.catalog.transfers({ client }).map((t) => this.withProgress(t)));
  }

  /** The record as the API shows it: live figures from the spool while uploading, the final ones after. */
  async withProgress(t: TransferRecord): Promise<Transfer> {
    const p: { wireOffset: number; framesVerified: number; rawBytes: number; chain: Buffer | null } =
      t.state === 'uploading'
        ? await this.src.progress(t.id)
        : { wireOffset: t.wireBytes ?? 0, framesVerified: t.framesVerified ?? 0, rawBytes: t.rawBytes ?? 0, chain: null };
    const free = await this.src.freeBytes();
    const shown = this.src.unrecordedEnd(t, free);
    return {
      id: t.id, client: t.client, volume: t.volume, snapshot: t.snapshot, uuid: t.uuid, parentUuid: t.parentUuid,
      state: shown?.state ?? t.state, createdAt: t.createdAt, updatedAt: t.updatedAt, chunkSize: t.chunkSize,
      wireOffset: p.wireOffset, framesVerified: p.framesVerified, rawBytes: p.rawBytes, rawEstimate: t.rawEstimate,
      chain: p.chain?.toString('hex') ?? '', error: shown?.error ?? t.error, lastInterruption: t.lastInterruption, interruptions: t.interruptions,
      sendStream: t.sendStream,
      rawReceived: t.state === 'received' ? (t.rawBytes ?? p.rawBytes) : this.src.rawReceived(t.id),
      wireArrived: this.src.arrived(t.id),
      // Read after the progress, which an append that ended in between may have left behind: never shown below it.
      wireHeld: t.state === 'uploading' ? Math.max(p.wireOffset, await this.src.held(t.id)) : p.wireOffset,
      heldByPush: t.state === 'uploading' && this.src.heldByPush(t.id),
      // The catalog has the free space of the last failure; the caller wants it now, beside what is needed.
      wait: shown?.wait ?? (t.wait === null ? null : { ...t.wait, freeBytes: free ?? t.wait.freeBytes }),
      spoolBytes: await this.src.spoolBytes(t.id),
    };
  }

  /** The verified frames' records, for a client whose regenerated stream no longer matches the chain. */
  async frames(client: SafeName, id: string, from: number, limit: number): Promise<FrameRecord[]> {
    const t = this.own(client, id);
    if (t.state !== 'uploading') return [];
    const records = await this.src.frameRecords(id, from, Math.min(limit, MAX_FRAMES_PER_PAGE));
    return records
      .filter((r) => r.kind === 'data')
      .map((r) => ({ index: r.index, wireEnd: r.wireEnd, rawEnd: r.rawEnd, chain: r.chain.toString('hex') }));
  }

  async snapshots(client: SafeName, volume: SafeName): Promise<SnapshotList> {
    await this.src.refreshVolume(client, volume);
    const snapshots = this.src.catalog
      .snapshots(client, volume)
      .sort(byTaken)
      // Where it is on disk is the server's own business (server/uuid-namespace.ts).
      .map(({ client: _c, volume: _v, receivedUuid: _r, ctransid: _t, ...s }) => s);
    return { snapshots, removed: this.src.catalog.removed(client, volume), patchBytes: SPOOL_PATCH_BYTES };
  }

  async volumes(client: SafeName): Promise<VolumeSummary[]> {
    const out = [];
    for (const name of await this.volumeNames(client)) {
      const list = (await this.snapshots(client, name as SafeName)).snapshots;
      out.push(volumeSummary(name, list, list.filter((s) => s.altered !== null).map((s) => s.name)));
    }
    return out;
  }

  /**
   * The server's status; with `client`, its counts (orphaned spools among them) are that client's own. Free space
   * and the server's facts are everyone's business.
   */
  async status(client?: SafeName): Promise<Status> {
    const snapshots = client === undefined ? this.src.catalog.allSnapshots() : this.src.catalog.snapshots(client);
    const transfers: Record<string, number> = {};
    const free = await this.src.freeBytes();
    for (const t of this.src.catalog.transfers(client === undefined ? {} : { client })) {
      // A whole stream whose end is not on record yet counts as the wait it is in, as its transfer shows.
      const state = this.src.unrecordedEnd(t, free)?.state ?? t.state;
      transfers[state] = (transfers[state] ?? 0) + 1;
    }
    let volumes = 0;
    for (const c of client === undefined ? this.clients() : [client]) volumes += (await this.volumeNames(c)).length;
    return {
      service: 'snapferry', version: VERSION, uptimeSeconds: Math.round((Date.now() - this.src.startedAt) / 1000),
      freeBytes: free,
      volumes, snapshots: snapshots.length, transfers,
      receiveStreamVersions: [...(await this.src.receiveStreamVersions())],
      orphanedSpools: countSpools(await this.src.orphanedSpools(client)),
    };
  }

  /** Every client the catalog knows of (by a snapshot or a transfer), sorted. */
  clients(): SafeName[] {
    const names = new Set<string>();
    for (const s of this.src.catalog.allSnapshots()) names.add(s.client);
    for (const t of this.src.catalog.transfers()) names.add(t.client);
    return [...names].sort() as SafeName[];
  }

  /** What /metrics counts of one client, read at scrape time. */
  async clientFacts(client: SafeName): Promise<ClientFacts> {
    const volumes = (await this.volumeNames(client)).map((name) => ({ name, snapshots: this.src.catalog.snapshots(client, name) }));
    const transfers = [];
    const free = await this.src.freeBytes();
    for (const record of this.src.catalog.transfers({ client })) {
      // A whole stream whose end is not on record yet counts as the wait it is in, with its whole stream's figures.
      const shown = this.src.unrecordedEnd(record, free);
      const counted = shown === null ? record : { ...record, ...shown, rawBytes: (await this.src.progress(record.id)).rawBytes };
      transfers.push({ record: counted, wireBytes: await this.wireBytes(record), spoolBytes: await this.src.spoolBytes(record.id), rawReceived: this.src.rawReceived(record.id) });
    }
    return { volumes, transfers, orphanedSpools: await this.src.orphanedSpools(client) };
  }

  /**
   * The client's volumes that hold something, sorted: a snapshot, or the stream of a transfer not over (the first push
   * into the volume under way, or a whole stream waiting for its receive). A creation alone (a tus POST, no byte sent
   * yet) makes no volume: a client may create uploads nobody will ever send, on as many volume names as it likes,
   * and each listed an empty volume until it expired. Nor does a transfer that ended without a snapshot: its spool,
   * when a failed one keeps it, is listed with the spools of ended transfers.
   */
  private async volumeNames(client: SafeName): Promise<string[]> {
    const names = new Set(this.src.catalog.snapshots(client).map((s) => s.volume));
    for (const t of this.src.catalog.transfers({ client })) {
      if (names.has(t.volume) || !inProgress(t.state)) continue;
      // Past uploading, the whole stream is in the spool.
      if (t.state !== 'uploading' || (await this.src.held(t.id)) > 0) names.add(t.volume);
    }
    return [...names].sort();
  }

  /** Framed bytes the server verified for a transfer: live from the frame index while uploading, else as recorded. */
  private async wireBytes(t: TransferRecord): Promise<number> {
    if (t.state === 'uploading') return (await this.src.progress(t.id).catch(() => null))?.wireOffset ?? 0;
    const expired = t.error?.details?.wireBytes;
    return t.wireBytes ?? (typeof expired === 'number' ? expired : 0);
  }
}

/** How many spools, and their bytes, as GET /v1/status shows them. */
export function countSpools(spools: readonly OrphanedSpool[]): { count: number; bytes: number } {
  return { count: spools.length, bytes: spools.reduce((n, s) => n + s.bytes, 0) };
}

// --- what each caller may see ------------------------------------------------------------------------------------

/** The service's views, as the callers' scoping below reads them (ReplicationService has them all). */
export interface ServiceViews {
  transfers(client: SafeName): Promise<Transfer[]>;
  snapshots(client: SafeName, volume: SafeName): Promise<SnapshotList>;
  volumes(client: SafeName): Promise<VolumeSummary[]>;
  status(client?: SafeName): Promise<Status>;
  clients(): SafeName[];
  /** The client that owns transfer `id`, or undefined when there is none. */
  transferOwner(id: string): string | undefined;
}

/** The clients whose things a request covers. */
export function clientsFor(service: Pick<ServiceViews, 'clients'>, caller: Caller, query: string | undefined): SafeName[] {
  const named = clientNamed(caller, query);
  return named === undefined ? service.clients() : [named];
}

/** The client that owns transfer `id` as this caller may see it; a client always gets its own name back. */
export function ownerOf(service: Pick<ServiceViews, 'transferOwner'>, caller: Caller, id: string): SafeName {
  if (caller.role === 'client') return caller.client;
  const owner = service.transferOwner(id);
  if (owner === undefined) throw new NotFound(`transfer ${id}`);
  return owner as SafeName;
}

/**
 * Refuses a tus request on an upload that is not the caller's, with the very error a missing one gets. It runs
 * before anything else touches the upload: a HEAD of another client's upload must not take its lease either.
 */
export function assertOwnUpload(service: Pick<ServiceViews, 'transferOwner'>, caller: Caller, id: string): void {
  if (caller.role !== 'client' || !ownsUpload(service, caller.client, id)) throw new NotFound(`transfer ${id}`);
}

/** Whether upload `id` is `client`'s: the one rule, for the route (assertOwnUpload) and for tus (server/upload-store/tus-server.ts). */
export function ownsUpload(service: Pick<ServiceViews, 'transferOwner'>, client: string, id: string): boolean {
  return service.transferOwner(id) === client;
}

/** A client's counts (orphaned spools among them) are its own; the admin's are the whole server's. */
export async function statusFor(service: Pick<ServiceViews, 'status'>, caller: Caller): Promise<Status> {
  return service.status(caller.role === 'admin' ? undefined : caller.client);
}

export async function volumesFor(service: Pick<ServiceViews, 'volumes' | 'clients'>, caller: Caller, query: string | undefined) {
  const volumes = [];
  for (const client of clientsFor(service, caller, query)) {
    for (const v of await service.volumes(client)) volumes.push(caller.role === 'admin' ? { client, ...v } : v);
  }
  return { client: caller.role === 'admin' ? ALL_CLIENTS : caller.client, volumes };
}

export async function snapshotsFor(service: Pick<ServiceViews, 'snapshots' | 'clients'>, caller: Caller, volume: SafeName, query: string | undefined) {
  // `client`: what a snapshot whose UUID the server lost is namespaced under (Snapshot.uuidUnknown).
  if (caller.role === 'client') return { volume, client: caller.client, ...(await service.snapshots(caller.client, volume)) };
  const snapshots: (Snapshot & { client: string })[] = [];
  // Removed-snapshot notes already carry their `client`.
  const removed = [];
  for (const client of clientsFor(service, caller, query)) {
    const one = await service.snapshots(client, volume);
    snapshots.push(...one.snapshots.map((s) => ({ client, ...s })));
    removed.push(...one.removed);
  }
  snapshots.sort(byTaken);
  return { volume, snapshots, removed };
}

export async function transfersFor(service: Pick<ServiceViews, 'transfers' | 'clients'>, caller: Caller, query: string | undefined): Promise<Transfer[]> {
  const out: Transfer[] = [];
  // Transfer already carries its `client`.
  for (const client of clientsFor(service, caller, query)) out.push(...(await service.transfers(client)));
  return out;
}
