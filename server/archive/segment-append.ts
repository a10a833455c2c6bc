/**
 * One request's bytes into an archive upload's segments (docs/archive.md, "Segments, not one multipart object").
 * Frames are verified as the local spool verifies them (core/wire's FrameParser, cut by server/spool/frame-cutter.ts)
 * and gathered, byte for byte, into the segment being built; a segment is stored (and recorded, by the caller's
 * `store`) every `segmentBytes` or `segmentMs` during a long request, and when the request ends however it ends, with
 * the frames that verified. What arrived of a frame in flight is never kept: unlike the local spool, which keeps a cut
 * frame's tail on its own disk, an instance keeps nothing the next request may need, because the next request may
 * reach another instance. A cut costs the client that part of a frame, sent again.
 */
import { SEALING_PREFIX_BYTES, streamSealing, type VerifiedFrame } from '../../core/wire/index.ts';
import { FrameCutter } from '../spool/frame-cutter.ts';
import type { SpoolProgress } from '../spool/progress.ts';
import { segmentName, type SegmentRecord } from './upload-state.ts';

/** Frame 0 of a stream, as the sink hears of it. */
export interface FirstFrame {
  /** Its raw bytes; null for a sealed frame (the server holds no key). */
  raw: Buffer | null;
  /** The key id (hex) it is sealed under, null when plain (core/wire/frame-seal.ts streamSealing). */
  sealedBy: string | null;
}

/** What the store learns of a stream as it is stored (the spool's FrameSink, for an archive upload). */
export interface SegmentSink {
  /**
   * Frame 0; throws (or rejects) to refuse the stream before any of it is stored. A SnapferryError that is not
   * retryable is final: SegmentUploads ends the upload with it (failed) before the request answers.
   */
  start(first: FirstFrame): Promise<void> | void;
  /**
   * The end frame is verified, stored and recorded in state.json: the stream is complete, its segments final (the
   * place to write its manifest and the catalog). Called once, by the request that stored the end frame.
   */
  complete(progress: SpoolProgress, segments: readonly SegmentRecord[]): Promise<void> | void;
}

export interface SegmentLimits {
  /** Store the segment being built once it holds this many bytes (64 MiB). */
  segmentBytes: number;
  /** ... or once its first frame is this old (30 s): what a killed instance can lose of a long request. */
  segmentMs: number;
}

export const SEGMENT_LIMITS: SegmentLimits = { segmentBytes: 64 * 1024 * 1024, segmentMs: 30_000 };

export interface SegmentJob {
  /** The verified progress recorded before the request: the request's bytes start there. */
  start: SpoolProgress;
  chunkSize: number;
  body: AsyncIterable<Buffer>;
  sink: SegmentSink;
  limits: SegmentLimits;
  now(): number;
  /** Stores the segment and records it; resolves once both are durable (the acknowledgement waits for it). */
  store(segment: SegmentRecord, body: Buffer): Promise<void>;
  /** Each request body chunk as it arrives. */
  arrived(bytes: number): void;
}

interface OpenSegment {
  first: number;
  wireStart: number;
  parts: Buffer[];
  bytes: number;
  since: number;
  last: VerifiedFrame;
}

/** Stores the verified frames of `job.body` in segments; returns the verified progress after them. */
export async function appendSegments(job: SegmentJob): Promise<SpoolProgress> {
  const { start, sink, limits } = job;
  const cutter = new FrameCutter({
    state: { chunkSize: job.chunkSize, framesVerified: start.framesVerified, wireOffsetVerified: start.wireOffset, rawOffset: start.rawBytes, chain: start.chain, ended: start.complete },
    keepRaw: true,
  });
  let progress = start;
  let open: OpenSegment | null = null;

  const flush = async (): Promise<void> => {
    if (open === null) return;
    const segment = open;
    open = null;
    const body = Buffer.concat(segment.parts, segment.bytes);
    const { last } = segment;
    const end = last.kind === 'end';
    const record: SegmentRecord = {
      name: segmentName(segment.first, last.index, last.chain, body),
      first: segment.first,
      last: last.index,
      wireStart: segment.wireStart,
      wireEnd: last.wireEnd,
      rawEnd: end ? last.rawOffset : last.rawOffset + last.rawLength,
      chain: last.chain.toString('hex'),
      end,
    };
    await job.store(record, body);
    progress = { wireOffset: record.wireEnd, framesVerified: end ? last.index : last.index + 1, rawBytes: record.rawEnd, chain: last.chain, complete: end };
  };

  let failure: unknown = null;
  try {
    for await (const chunk of job.body) {
      job.arrived(chunk.length);
      const { frames, failure: failed } = cutter.push(chunk);
      for (const { frame, parts } of frames) {
        if (frame.index === 0 && frame.kind === 'data') await sink.start(firstFrame(frame, parts));
        const length = frame.wireEnd - frame.wireStart;
        open ??= { first: frame.index, wireStart: frame.wireStart, parts: [], bytes: 0, since: job.now(), last: frame };
        open.parts.push(...parts);
        open.bytes += length;
        open.last = frame;
        if (open.bytes >= limits.segmentBytes || job.now() - open.since >= limits.segmentMs) await flush();
      }
      if (failed) throw failed;
    }
  } catch (err) {
    failure = err;
  }
  // However the request ended (its end, a cut, a frame that failed after good ones), what verified is stored. A
  // failure to store is the request's answer: nothing after the last recorded segment was acknowledged.
  await flush();
  if (failure) throw failure;
  return progress;
}

/**
 * Frame 0 as the sink hears of it; `parts` are its bytes as they came, header first. A sealed frame's seal header
 * (after the frame header) names its key: only those first bytes are copied, not the chunk.
 */
function firstFrame(frame: VerifiedFrame, parts: readonly Buffer[]): FirstFrame {
  if (!frame.sealed) return { raw: frame.raw ? Buffer.concat(frame.raw) : null, sealedBy: null };
  const start: Buffer[] = [];
  let length = 0;
  for (const p of parts) {
    if (length >= SEALING_PREFIX_BYTES) break;
    start.push(p);
    length += p.length;
  }
  return { raw: null, sealedBy: streamSealing(Buffer.concat(start, length).subarray(0, SEALING_PREFIX_BYTES)) };
}
