/**
 * Whether a new upload (a tus creation request) may begin, as pure functions over what the service looked up: the
 * metadata, the client's snapshots and transfers as the catalog has them, the free bytes, the limits and what this
 * server's btrfs receive reads. Nothing here reads the disk or the clock: the service does the looking (statfs,
 * btrfs features, the volume and the parent on disk) and feeds the facts in, in the order that keeps the checks
 * that must run in one turn together (see ReplicationService.beginTransfer).
 */
import { SnapferryError, ValidationError } from '../../core/errors.ts';
import { parseName, parseUuid, type SafeName } from '../../core/names.ts';
import { META, SEND_STREAM_VERSION, SendStreamName, WIRE_FORMAT, inProgress, sendStreams, type SendStream } from '../../core/protocol.ts';
import { validateChunkSize } from '../../core/wire/index.ts';
import type { BtrfsFeatures } from '../../core/btrfs/features.ts';
import type { SnapshotRecord, TransferRecord } from '../catalog.ts';
import { parentAltered } from '../alterations.ts';
import { DiskFullError } from '../disk-full.ts';
import { parseTimeMetadata } from '../snapshot-time.ts';
import { tooManyUploads } from '../upload-limits.ts';
import { TransferConflict } from './errors.ts';
import { holdsVolume, type ReceivingNow } from './volume-hold.ts';

/** Below this much free space (plus two chunks) a new upload is refused at once: it could not get far. */
export const MIN_FREE_BYTES = 4 * 1024 * 1024;

export type CreationMetadata = Record<string, string | null | undefined>;

/** The creation request's metadata, parsed and validated. */
export interface Creation {
  volume: SafeName;
  snapshot: SafeName;
  uuid: string;
  parentUuid: string | null;
  /** The parent on the client is a received copy (META.parentReceived): its ctransid is no evidence either way. */
  parentReceived: boolean;
  chunkSize: number;
  sendStream: SendStream;
  /** The client's estimate of the raw stream's size, null when it gave none that makes sense. */
  rawEstimate: number | null;
  createdAt: string | null;
  takenAt: string | null;
  /**
   * The ctransids the client says the stream's first command carries (META.ctransid, META.parentCtransid; the
   * parent's only for an incremental), null where it said none (an older client). A btrfs server reads them from
   * frame 0 instead; an archive takes them for a sealed stream, whose frame 0 it cannot read.
   */
  ctransid: number | null;
  parentCtransid: number | null;
}

/** What this server's btrfs receive reads (core/btrfs/features.ts). */
export type Receivable = Pick<BtrfsFeatures, 'receiveStreamVersions' | 'progs'>;

/** Parses the tus metadata of a new upload; throws the caller's mistake (400) or a format this server cannot take. */
export function parseCreation(metadata: CreationMetadata, receivable: Receivable): Creation {
  const volume = parseName(metadata[META.volume], 'volume');
  const snapshot = parseName(metadata[META.snapshot], 'snapshot name');
  const uuid = parseUuid(metadata[META.uuid], 'snapshot UUID');
  const parentRaw = metadata[META.parentUuid];
  const parentUuid = parentRaw ? parseUuid(parentRaw, 'parent UUID') : null;
  const parentReceived = parentUuid !== null && metadata[META.parentReceived] === '1';
  if (metadata[META.format] !== WIRE_FORMAT) {
    throw new SnapferryError('unsupported_format', `this server speaks wire format ${WIRE_FORMAT}; upgrade the client or the server so they match`);
  }
  const chunkSize = parseChunkSize(metadata[META.chunkSize]);
  const estimate = Number(metadata[META.rawEstimate]);
  const sendStream = receivableSendStream(metadata[META.sendStream], receivable);
  const createdAt = parseTimeMetadata(metadata[META.createdAt], META.createdAt);
  const takenAt = parseTimeMetadata(metadata[META.takenAt], META.takenAt);
  const rawEstimate = Number.isFinite(estimate) && estimate >= 0 ? estimate : null;
  const ctransid = parseTransid(metadata[META.ctransid], META.ctransid);
  const parentCtransid = parentUuid === null ? null : parseTransid(metadata[META.parentCtransid], META.parentCtransid);
  return { volume, snapshot, uuid, parentUuid, parentReceived, chunkSize, sendStream, rawEstimate, createdAt, takenAt, ctransid, parentCtransid };
}

/**
 * A transaction id the client declared (decimal, as btrfs's u64 fits a JS number up to 2^53), null when absent. One
 * that is not a count is the client's mistake (400): taken as absent, it would let a sealed stream pass unjudged.
 */
function parseTransid(raw: string | null | undefined, key: string): number | null {
  if (raw === undefined || raw === null) return null;
  const n = Number(raw);
  if (!/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(n)) {
    throw new ValidationError(`upload metadata ${key} is ${JSON.stringify(raw.slice(0, 40))}, not a transaction id`, { details: { [key]: raw.slice(0, 40) } });
  }
  return n;
}

/** The metadata's chunk size, or the caller's mistake (400, not retryable): never a RangeError answered 500. */
function parseChunkSize(raw: string | null | undefined): number {
  try {
    return validateChunkSize(Number(raw));
  } catch (err) {
    throw new ValidationError(`metadata ${META.chunkSize}: ${(err as Error).message}`, { details: { chunkSize: raw ?? null } });
  }
}

/** The upload's way of sending (absent: 'v1'), refused when this server's btrfs receive cannot read it. */
function receivableSendStream(raw: string | null | undefined, receivable: Receivable): SendStream {
  const parsed = SendStreamName.safeParse(raw ?? 'v1');
  if (!parsed.success) {
    throw new ValidationError(`upload metadata ${META.sendStream} is ${JSON.stringify(String(raw).slice(0, 40))}, not one of ${sendStreams.join(', ')}`);
  }
  const version = SEND_STREAM_VERSION[parsed.data];
  const { receiveStreamVersions, progs } = receivable;
  if (!receiveStreamVersions.includes(version)) {
    throw new SnapferryError(
      'unsupported_format',
      `this server's btrfs receive (btrfs-progs ${progs?.text ?? 'of unknown version'}) cannot read send stream version ${version}: push with --send-compressed off, or upgrade btrfs-progs on the server to 6.0 or later`,
      { details: { sendStream: parsed.data, receiveStreamVersions } },
    );
  }
  return parsed.data;
}

/** An upload of `chunkSize` chunks needs room for two of them and a margin; `freeBytes` is the spool's filesystem's. */
export function checkFreeSpace(freeBytes: number, chunkSize: number): void {
  if (freeBytes < MIN_FREE_BYTES + 2 * chunkSize) throw new DiskFullError(null, { freeBytes });
}

/**
 * At most `maxOpenUploads` per client: uploads in progress, and every other upload of the client that holds a spool
 * (a failed transfer keeps its own until it expires or is aborted; it counted for nothing, and repeated failures
 * filled the disk). `transfers` are the client's; `spoolIds` the ids of the client's uploads in the spool folder.
 */
export function checkOpenUploads(client: string, transfers: readonly TransferRecord[], spoolIds: readonly string[], maxOpenUploads: number): void {
  const open = new Set([...transfers.filter((t) => t.state === 'uploading').map((t) => t.id), ...spoolIds]);
  if (open.size < maxOpenUploads) return;
  const stateOf = new Map(transfers.map((t) => [t.id, t.state]));
  const keptByFailed = spoolIds.filter((id) => stateOf.get(id) === 'failed').length;
  throw tooManyUploads(client, open.size, keptByFailed, maxOpenUploads);
}

/** What the catalog holds of one client, as the conflict checks need it. */
export interface ClientHoldings {
  /** Every snapshot of the client, in all its volumes. */
  snapshots: readonly SnapshotRecord[];
  /** Every transfer of the client the catalog holds. */
  transfers: readonly TransferRecord[];
  /** Whose receive still works in its volume's folder (an ended transfer's, being stopped, too). */
  receiving: ReceivingNow;
}

/**
 * Refuses a UUID the client already holds in another volume: both would have the same Received UUID on disk, and
 * btrfs receive could pick either as a parent or clone source. One client's snapshot lives in one volume: its UUID
 * maps to one Received UUID on disk (server/uuid-namespace.ts), which two subvolumes must not share. Another
 * client's UUIDs are in another namespace and change nothing here.
 */
export function assertUuidFree(snapshots: readonly SnapshotRecord[], volume: string, uuid: string): void {
  const held = snapshots.find((s) => s.uuid === uuid && s.volume !== volume);
  if (held === undefined) return;
  // The volume that holds it, not the one asked for: that is where the user looks (and what they may delete).
  throw new TransferConflict(
    'snapshot_uuid_taken',
    `the server already holds this snapshot (UUID ${uuid}) in volume ${held.volume} as ${held.name}; a snapshot can be pushed to one volume only: push it to ${held.volume}, or push a new snapshot to ${volume}`,
    { details: { uuid, heldIn: held.volume, heldAs: held.name } },
  );
}

/** Throws the first conflict between the new upload and what the client holds or runs. */
export function checkConflicts(c: Creation, held: ClientHoldings): void {
  const { volume, snapshot, uuid, parentUuid } = c;
  const inVolume = held.snapshots.filter((s) => s.volume === volume);
  if (inVolume.some((s) => s.uuid === uuid)) {
    throw new TransferConflict('snapshot_present', `the server already holds ${volume}/${snapshot}`, { details: { volume, snapshot } });
  }
  if (inVolume.some((s) => s.name === snapshot)) {
    throw new TransferConflict('snapshot_name_taken', `${volume} already has a different snapshot named ${snapshot} on the server; rename one of them`);
  }
  // Checked again just before the receive (ReceiveJob.confirm), for two uploads of one UUID at once.
  assertUuidFree(held.snapshots, volume, uuid);
  const parent = parentUuid === null ? undefined : inVolume.find((s) => s.uuid === parentUuid);
  if (parentUuid && !parent) {
    throw new TransferConflict('parent_missing', `the server does not hold the parent snapshot ${parentUuid} of ${snapshot}; push again to pick another parent`, {
      details: { parentUuid },
    });
  }
  if (parent?.altered) throw parentAltered(parent);
  const busy = held.transfers.find((t) => t.volume === volume && holdsVolume(t, held.receiving));
  if (busy) {
    const what = inProgress(busy.state) ? `is already in progress (${busy.state}); wait for it or abort it` : `is ${busy.state} and its receive is being stopped; try again shortly`;
    throw new TransferConflict('volume_busy', `transfer ${busy.id} of ${volume}/${busy.snapshot} ${what}`, {
      retryable: true,
      details: { transferId: busy.id, snapshot: busy.snapshot, state: busy.state },
    });
  }
}

/** The record of a new upload that passed every check; `now` is an ISO time. */
export function newTransfer(client: SafeName, id: string, c: Creation, now: string): TransferRecord {
  return {
    id, client, volume: c.volume, snapshot: c.snapshot, uuid: c.uuid, parentUuid: c.parentUuid, chunkSize: c.chunkSize, sendStream: c.sendStream,
    ...(c.parentReceived ? { parentReceived: true } : {}),
    snapshotCreatedAt: c.createdAt, snapshotTakenAt: c.takenAt,
    state: 'uploading', createdAt: now, updatedAt: now, rawEstimate: c.rawEstimate,
    error: null, lastInterruption: null, interruptions: 0, wireBytes: null, rawBytes: null, framesVerified: null, wait: null,
  };
}

/** checkConflicts, then the new record: the transfer a creation request begins, or the conflict that refuses it. */
export function admitTransfer(client: SafeName, id: string, c: Creation, held: ClientHoldings, now: string): TransferRecord {
  checkConflicts(c, held);
  return newTransfer(client, id, c, now);
}
