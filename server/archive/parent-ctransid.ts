/**
 * An archive's side of a parent changed on the client after it was sent (docs/design.md, "Snapshots changed by
 * hand"). An incremental describes its snapshot as changes from the client's parent as it is *now*; the archive holds
 * the parent's stream as it was sent, and a restore applies the incremental on that copy, so a parent changed since
 * (made writable, written to, made read-only again) restores a snapshot that differs from the client's, silently. A
 * btrfs server compares the stream's CLONE_CTRANSID with its copy's Send transid (server/stream-start.ts
 * parentChangedProblem); an archive has no copy to ask, so it records the ctransid each stream was sent at with the
 * stored stream (CatalogEntry.ctransid) and compares with that, through the same function: the same 409
 * `parent_changed`, at frame 0, so that push goes around the parent as it does against a btrfs server.
 *
 * A plain stream tells both values itself (its first command: CTRANSID, and an incremental's CLONE_CTRANSID). A sealed
 * one cannot be read here, so the client declares them in the upload's metadata (META.ctransid, META.parentCtransid),
 * and the archive takes its word: it can read its own parent's stream, the server cannot.
 */
import { FRAME_HEADER_SIZE, FrameError, FrameParser, type SendStreamHeader } from '../../core/wire/index.ts';
import type { Sealing } from '../../core/sealing.ts';
import { SnapferryError } from '../../core/errors.ts';
import { parentChangedProblem, readStreamStart, type StreamParentNow } from '../stream-start.ts';
import type { ObjectStore } from './object-store.ts';
import type { TransferRecord } from './archive-transfer.ts';
import type { FirstFrame } from './segment-append.ts';
import type { ManifestSegment } from './manifest.ts';
import type { CatalogEntry } from './volume-catalog.ts';

/**
 * The first command at the start of a plain stream's raw bytes, or null where they hold none. An archive stores
 * whatever plain frames verify and never receives them (the restoring client's checks judge the content), so a frame
 * 0 that is not a send stream's start is stored as before, with nothing to record or compare.
 */
export function plainStreamStart(raw: Buffer): SendStreamHeader | null {
  try {
    return readStreamStart(raw);
  } catch {
    return null;
  }
}

/**
 * The ctransid the stream of `record` was sent at, to record with it: a plain stream's own first command (read back
 * from its stored frame 0, `start`), a sealed one's from the client's declaration. Null when neither says (a sealed
 * stream from a client older than the declaration, a frame 0 of another subvolume than the upload names).
 */
export function sentCtransid(record: Pick<TransferRecord, 'uuid' | 'ctransid'>, sealedBy: Sealing, start: SendStreamHeader | null): number | null {
  if (sealedBy !== null) return record.ctransid ?? null;
  return start !== null && start.uuid === record.uuid ? start.ctransid : null;
}

/**
 * What the incremental's frame 0 says of its parent now: a plain stream's first command, a sealed stream's declared
 * CLONE_CTRANSID. Null when there is nothing to judge by (an older client's sealed stream, a plain frame 0 that holds
 * no send stream's start, or one that names another parent than the upload: its ctransid is not this parent's).
 */
export function parentNow(record: Pick<TransferRecord, 'parentUuid' | 'parentCtransid'>, first: Pick<FirstFrame, 'raw'>): StreamParentNow | null {
  if (record.parentUuid === null) return null;
  if (first.raw === null) {
    const declared = record.parentCtransid ?? null;
    return declared === null ? null : { kind: 'snapshot', cloneUuid: record.parentUuid, cloneCtransid: declared };
  }
  const start = plainStreamStart(first.raw);
  if (start?.kind !== 'snapshot' || start.cloneUuid !== record.parentUuid) return null;
  return start;
}

/**
 * The archive's `parent_changed` for an incremental's frame 0, or null. Not judged, as on a btrfs server: a parent
 * the client restored (`parentReceived`: btrfs send gives that copy's own ctransid). Nor a parent stored before the
 * archive recorded ctransids (its entry has none): nothing to compare, and refusing every incremental on an older
 * archive's streams would break every chain it holds; a changed parent there goes unseen, as it did before.
 */
export function parentChangedInArchive(
  record: Pick<TransferRecord, 'parentUuid' | 'parentCtransid' | 'parentReceived'>,
  first: Pick<FirstFrame, 'raw'>,
  parent: Pick<CatalogEntry, 'name' | 'ctransid'>,
): SnapferryError | null {
  const now = parentNow(record, first);
  if (now === null || parent.ctransid === undefined || parent.ctransid === null) return null;
  return parentChangedProblem(now, record.parentReceived === true, { name: parent.name, sendTransid: parent.ctransid });
}

/**
 * The first command of a stored plain stream, from frame 0 of its first segment (one ranged GET of at most a frame
 * header and a chunk: a plain payload is never longer than its chunk), or null where frame 0 holds none.
 */
export async function readStoredStart(objects: ObjectStore, first: Pick<ManifestSegment, 'key' | 'wireStart' | 'wireEnd'>, chunkSize: number): Promise<SendStreamHeader | null> {
  const bytes = await objects.getRange(first.key, 0, Math.min(first.wireEnd - first.wireStart, FRAME_HEADER_SIZE + chunkSize));
  let frames;
  try {
    frames = new FrameParser({ chunkSize, keepRaw: true }).push(bytes);
  } catch (err) {
    if (!(err instanceof FrameError)) throw err;
    // Its frames verified when they were stored: one that no longer does changed in the bucket.
    throw new SnapferryError('archive_object_corrupt', `the archive's segment ${first.key} does not start with the frame it was stored with`, {
      cause: err, details: { key: first.key },
    });
  }
  const frame = frames[0];
  return frame?.kind === 'data' && frame.raw !== undefined ? plainStreamStart(Buffer.concat(frame.raw)) : null;
}
