/**
 * An archive upload's `state.json` (docs/archive.md, "Objects in the bucket"): what the upload is (metadata, creation,
 * declared size) and its verified progress, as the list of segment objects that hold its frames. It is the archive's
 * frame index: the offset a HEAD reports is the end of its last segment, and nothing else is trusted. Swapped only by
 * compare-and-swap under the upload's lease; never deleted (a removed or expired upload keeps a tombstone), because a
 * mutable object may be in use by another instance at any time.
 *
 * Whatever comes back from the bucket is parsed here before anything trusts it (the bucket is shared with every
 * instance and its operator).
 */
import crypto from 'node:crypto';
import { SnapferryError } from '../../core/errors.ts';
import { CHAIN_ZERO, HASH_SIZE } from '../../core/wire/index.ts';
import { isTransferId } from '../layout.ts';
import type { SpoolProgress } from '../spool/progress.ts';
import type { UploadMetadata } from '../upload-store/store.ts';

export const STATE_VERSION = 1;

/** One segment object: whole verified frames first..last, byte for byte, at [wireStart, wireEnd) of the stream. */
export interface SegmentRecord {
  /** The object's name in the upload's folder (seg-...). */
  name: string;
  first: number;
  /** The last frame: a data frame's index, or for the end frame N (the data frame count), as the parser numbers it. */
  last: number;
  wireStart: number;
  wireEnd: number;
  /** Raw bytes of the stream after `last` (the next frame's raw offset). */
  rawEnd: number;
  /** The chain after `last`, hex. */
  chain: string;
  /** Whether `last` is the end frame. */
  end: boolean;
}

export type Tombstone = 'removed' | 'expired';

export interface UploadState {
  version: typeof STATE_VERSION;
  id: string;
  metadata: UploadMetadata;
  creationDate: string;
  /** The length the creation declared, if any: kept, binds nothing (server/upload-store/spool-uploads.ts says why). */
  size: number | null;
  /** The lease generation of the last swap: the fence (server/archive/lease.ts). */
  generation: number;
  /** When a request last changed the upload (this instance's clock): what expiry dates from. */
  touchedAt: string;
  segments: SegmentRecord[];
  /** Set when the upload was terminated or expired: its segments are going or gone. */
  tombstone: Tombstone | null;
  /**
   * Why the server ended the upload, when it refused its stream for good at frame 0 (sealing_mismatch,
   * parent_changed), or refused the creation that began it (server/upload-store/tus-server.ts; a declared length over
   * the quota, say): the transfer is
   * `failed` with it, as on a btrfs server. Only beside the tombstone `removed`, so that an instance older than this
   * field reads the upload as aborted instead of refusing its state.
   */
  error?: UploadError;
}

/** A final refusal, as a Transfer's error says it. */
export interface UploadError {
  code: string;
  message: string;
  at: string;
}

/** How an upload that is over ended: its transfer's state, and the error it failed with. */
export interface UploadEnd {
  state: 'aborted' | 'failed';
  error: UploadError | null;
}

/**
 * How the upload ended, or null while it has not (no tombstone). The one reading of a tombstone: the transfer's
 * listing (archive-transfer.ts) and its client's counts for GET /v1/status and /metrics (client-uploads.ts) both take
 * it from here, so that they cannot tell one upload two ways (the counts said aborted of an upload listed failed).
 * Expired: failed, upload_expired. Removed with an error: the server refused it (failed, with the refusal); without
 * one: its client's abort (or an end recorded before tombstones kept the server's reasons).
 */
export function uploadEnd(state: UploadState): UploadEnd | null {
  switch (state.tombstone) {
    case null:
      return null;
    case 'expired':
      return { state: 'failed', error: { code: 'upload_expired', message: 'nothing was sent for too long; the upload was deleted', at: state.touchedAt } };
    case 'removed':
      return state.error ? { state: 'failed', error: state.error } : { state: 'aborted', error: null };
  }
}

export function stateKey(id: string): string {
  return `${uploadFolder(id)}state.json`;
}

/** The upload's folder, with its trailing slash: a prefix to list. */
export function uploadFolder(id: string): string {
  if (!isTransferId(id)) throw new Error(`not an upload id: ${JSON.stringify(id)}`);
  return `uploads/${id}/`;
}

export const SEGMENT_PREFIX = 'seg-';

/**
 * seg-FIRST-LAST-CHAIN8-BODY8. Frames and chain say which frames these are; they do not say which bytes: a client that
 * resumes may frame the same chunks again at another compression level (same raw hashes, same chain, other payloads).
 * So the name also carries the first 8 bytes of the body's SHA-256: a name is written with one body only, and a PUT
 * that finds its name taken (a retry, a takeover) knows the bytes there are its own.
 */
export function segmentName(first: number, last: number, chain: Buffer, body: Buffer): string {
  const sum = crypto.createHash('sha256').update(body).digest();
  return `${SEGMENT_PREFIX}${pad(first)}-${pad(last)}-${chain.subarray(0, 8).toString('hex')}-${sum.subarray(0, 8).toString('hex')}`;
}

function pad(n: number): string {
  return String(n).padStart(10, '0');
}

/** The verified progress the state records: the end of its last segment. */
export function progressOf(state: UploadState): SpoolProgress {
  const last = state.segments.at(-1);
  if (!last) return { wireOffset: 0, framesVerified: 0, rawBytes: 0, chain: CHAIN_ZERO, complete: false };
  return {
    wireOffset: last.wireEnd,
    framesVerified: last.end ? last.last : last.last + 1,
    rawBytes: last.rawEnd,
    chain: Buffer.from(last.chain, 'hex'),
    complete: last.end,
  };
}

export function encodeState(state: UploadState): Buffer {
  return Buffer.from(JSON.stringify(state));
}

/** Parses a state.json read from the bucket; a malformed one is an error that names the object, never trusted. */
export function parseState(id: string, body: Buffer): UploadState {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw corrupt(id, 'it is not JSON', err);
  }
  const s = raw as Partial<UploadState> | null;
  if (typeof s !== 'object' || s === null) throw corrupt(id, 'it is not an object');
  if (s.version !== STATE_VERSION) throw corrupt(id, `its version is ${JSON.stringify(s.version)}, this server reads ${STATE_VERSION}`);
  if (s.id !== id) throw corrupt(id, `it names upload ${JSON.stringify(s.id)}`);
  if (!isMetadata(s.metadata)) throw corrupt(id, 'its metadata is not a map of strings');
  if (typeof s.creationDate !== 'string' || typeof s.touchedAt !== 'string') throw corrupt(id, 'its dates are missing');
  if (s.size !== null && !isCount(s.size)) throw corrupt(id, 'its declared size is not a byte count');
  if (!isCount(s.generation)) throw corrupt(id, 'its lease generation is not a count');
  if (s.tombstone !== null && s.tombstone !== 'removed' && s.tombstone !== 'expired') throw corrupt(id, 'its tombstone is unknown');
  if (s.error !== undefined && !(s.tombstone === 'removed' && isUploadError(s.error))) throw corrupt(id, 'its error is not a removed upload\'s code, message and time');
  if (!Array.isArray(s.segments)) throw corrupt(id, 'its segments are not a list');
  // The segments must tile the stream from 0 in frame order, each a name of ours, the end frame only last.
  let wire = 0;
  let frame = 0;
  s.segments.forEach((g: Partial<SegmentRecord>, i: number, all: unknown[]) => {
    const ok = typeof g === 'object' && g !== null && typeof g.name === 'string' && /^seg-\d{10}-\d{10}-[0-9a-f]{16}-[0-9a-f]{16}$/.test(g.name) &&
      g.first === frame && isCount(g.last) && g.last >= g.first && g.wireStart === wire && isCount(g.wireEnd) && g.wireEnd > wire &&
      isCount(g.rawEnd) && typeof g.chain === 'string' && /^[0-9a-f]+$/.test(g.chain) && g.chain.length === 2 * HASH_SIZE &&
      typeof g.end === 'boolean' && (!g.end || i === all.length - 1);
    if (!ok) throw corrupt(id, `its segment ${i} does not follow on from the one before`);
    wire = g.wireEnd!;
    frame = g.last! + 1;
  });
  return s as UploadState;
}

function isUploadError(v: unknown): v is UploadError {
  const e = v as Partial<UploadError> | null;
  return typeof e === 'object' && e !== null && typeof e.code === 'string' && typeof e.message === 'string' && typeof e.at === 'string';
}

function isCount(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

function isMetadata(v: unknown): v is UploadMetadata {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => x === null || typeof x === 'string');
}

function corrupt(id: string, why: string, cause?: unknown): SnapferryError {
  return new SnapferryError('archive_object_corrupt', `the archive's state of upload ${id} cannot be read: ${why}; the upload cannot go on (delete it and send the snapshot again)`, {
    cause, details: { transferId: id, key: stateKey(id) },
  });
}
