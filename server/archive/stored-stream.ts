/**
 * A stored stream read back for a restore (docs/archive.md, "Restore"): the frames exactly as they were stored, from
 * the segments the manifest lists, read by ranged GETs and verified again on the way out (core/wire's FrameParser,
 * as on the way in: a segment damaged in the bucket breaks the answer off instead of going out). No frame is made
 * again, so a resume (fromFrame, chain, skip: the restore protocol of server/restore.ts) is a place in the stored
 * bytes, found by parsing the segment that holds frame fromFrame from the state its predecessor recorded.
 */
import { Readable } from 'node:stream';
import { CHAIN_ZERO, FrameError, FrameParser, type FrameParserState } from '../../core/wire/index.ts';
import { SnapferryError, ValidationError } from '../../core/errors.ts';
import type { ObjectStore } from './object-store.ts';
import type { Manifest, ManifestSegment } from './manifest.ts';

/** How much of a segment one ranged GET fetches: a restore holds about this much at a time. */
const READ_BYTES = 8 * 1024 * 1024;

export interface StoredRead {
  fromFrame: number;
  /** The chain after fromFrame frames, as the client holds it; null when fromFrame is 0. */
  chain: Buffer | null;
  /** Bytes of frame fromFrame the client holds already. */
  skip: number;
}

/**
 * Opens the stream at frame `fromFrame`, `skip` bytes into it. Everything that can be refused is refused before this
 * resolves (a frame past the end, a chain that differs: stream_mismatch); a failure later errors the body.
 */
export async function openStoredStream(store: ObjectStore, manifest: Manifest, read: StoredRead): Promise<Readable> {
  const { segments, chunkSize } = manifest;
  if (read.fromFrame > manifest.frames) {
    throw new ValidationError(`fromFrame ${read.fromFrame} is past the stream's end: ${manifest.snapshot} has ${manifest.frames} frames`, {
      details: { fromFrame: read.fromFrame, frames: manifest.frames },
    });
  }
  const at = segments.findIndex((s) => s.last >= read.fromFrame);
  const prev = segments[at - 1];
  const parser = new FrameParser({ chunkSize, state: stateAfter(prev, chunkSize) });
  const first = segments[at]!;
  const bytes = await readSegment(store, first);
  const frames = verified(manifest, first, () => parser.push(bytes));
  const before = read.fromFrame === first.first ? (prev ? Buffer.from(prev.chain, 'hex') : CHAIN_ZERO) : frames.find((f) => f.index === read.fromFrame - 1)?.chain;
  const start = frames.find((f) => f.index === read.fromFrame);
  if (before === undefined || start === undefined) throw damaged(manifest, first);
  if (read.chain !== null && !read.chain.equals(before)) {
    throw new SnapferryError('stream_mismatch', `the archive's stream of ${manifest.snapshot} differs from the ${read.fromFrame} frames the client holds; start the restore over`, {
      details: { fromFrame: read.fromFrame },
    });
  }
  const offset = start.wireStart - first.wireStart + read.skip;
  if (offset > bytes.length) throw new ValidationError(`skip ${read.skip} is past the end of frame ${read.fromFrame}`, { details: { skip: read.skip } });
  async function* body(): AsyncGenerator<Buffer> {
    yield bytes.subarray(offset);
    for (const segment of segments.slice(at + 1)) {
      for (let from = 0; from < segment.wireEnd - segment.wireStart; from += READ_BYTES) {
        const piece = await store.getRange(segment.key, from, Math.min(from + READ_BYTES, segment.wireEnd - segment.wireStart));
        verified(manifest, segment, () => parser.push(piece));
        yield piece;
      }
    }
    verified(manifest, segments.at(-1)!, () => parser.finish());
  }
  return Readable.from(body(), { objectMode: false });
}

/** The parser's state after `segment` (the start of the stream for none). */
function stateAfter(segment: ManifestSegment | undefined, chunkSize: number): FrameParserState | undefined {
  if (!segment) return undefined;
  return { chunkSize, framesVerified: segment.last + 1, wireOffsetVerified: segment.wireEnd, rawOffset: segment.rawEnd, chain: Buffer.from(segment.chain, 'hex'), ended: false };
}

async function readSegment(store: ObjectStore, segment: ManifestSegment): Promise<Buffer> {
  const size = segment.wireEnd - segment.wireStart;
  const parts: Buffer[] = [];
  for (let from = 0; from < size; from += READ_BYTES) parts.push(await store.getRange(segment.key, from, Math.min(from + READ_BYTES, size)));
  return Buffer.concat(parts);
}

function damaged(manifest: Manifest, segment: ManifestSegment, why?: string): SnapferryError {
  return new SnapferryError(
    'archive_object_corrupt',
    `the archive's segment ${segment.key} of ${manifest.snapshot} does not hold the frames its manifest says` +
      `${why === undefined ? '' : ` (${why})`}: the stored copy is damaged in the bucket; restore it from the bucket's versions, or push the snapshot again`,
    { details: { key: segment.key, ...(why === undefined ? {} : { why }) } },
  );
}

/**
 * Frames read back from the bucket that do not verify are the stored copy's damage, not the client's nor the line's:
 * said as such, naming the object. A bare FrameError went out as 460 frame_corrupt, which names a frame of an upload.
 */
function verified<T>(manifest: Manifest, segment: ManifestSegment, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof FrameError) throw damaged(manifest, segment, err.message);
    throw err;
  }
}

/**
 * The records of data frames `from`.. (at most `limit`) of stored segments, for a client whose regenerated stream
 * must be compared frame by frame (a resumed push). Read from the segments themselves: state.json records segments,
 * not frames.
 */
export async function storedFrameRecords(
  store: ObjectStore, segments: readonly ManifestSegment[], chunkSize: number, from: number, limit: number,
): Promise<{ index: number; wireEnd: number; rawEnd: number; chain: string }[]> {
  const out: { index: number; wireEnd: number; rawEnd: number; chain: string }[] = [];
  const at = segments.findIndex((s) => s.last >= from);
  if (at < 0) return out;
  const parser = new FrameParser({ chunkSize, state: stateAfter(segments[at - 1], chunkSize) });
  for (const segment of segments.slice(at)) {
    for (const f of parser.push(await readSegment(store, segment))) {
      if (f.kind !== 'data' || f.index < from) continue;
      out.push({ index: f.index, wireEnd: f.wireEnd, rawEnd: f.rawOffset + f.rawLength, chain: f.chain.toString('hex') });
      if (out.length >= limit) return out;
    }
  }
  return out;
}
