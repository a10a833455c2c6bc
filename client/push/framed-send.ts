/**
 * `btrfs send` -> send-stream check -> first command named after the snapshot's UUID (both inside the send's reads)
 * -> (resume: hash to the server's offset) -> frame encoder, ready for tus.
 *
 * The check fails the pipeline on a bad stream (truncated, a second stream appended, wrong first command) before an
 * end frame could be made, and the send handle's stream only ends once btrfs send exited 0, so an end frame always
 * stands for a whole, good stream. On resume (docs/design.md, "Resume") the same send runs again and its first N chunks are
 * only hashed, not compressed or sent; framing starts at frame N with the chain the server holds. The name in the
 * stream is the UUID, not the directory's (core/wire/stream-naming.ts), so a snapshot renamed here resumes too; an
 * upload an older snapferry began under the directory's name goes on under that name, as its frame 0 shows.
 */
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as btrfs from '../../core/btrfs/index.ts';
import { btrfsFeatures, sendOptionsFor } from '../../core/btrfs/features.ts';
import type { SendStream } from '../../core/protocol.ts';
import { SnapferryError } from '../../core/errors.ts';
import {
  DEFAULT_ZSTD_LEVEL, FirstCommandRename, FrameEncoder, SendStreamChecker, firstReadSize, hashRawPrefix, resumeNaming, sealedFrameHash, stableNaming,
  type CompressionPool, type EncodedFrameInfo, type FrameSealing, type LevelChooser, type HashedChunk, type NameChooser, type SendStreamHeader,
} from '../../core/wire/index.ts';
import { FramedUploadSource } from '../upload/source.ts';

export interface FramedSendOptions {
  snapshotPath: string;
  parentPath: string | null;
  chunkSize: number;
  level: number | LevelChooser;
  /** Compress on these worker threads (default: on this one). */
  pool?: CompressionPool;
  maxSlice: number;
  /** How btrfs send makes the stream (default 'v1'); a resume must pass the transfer's own. */
  sendStream?: SendStream;
  signal?: AbortSignal;
  onFrame?: (frame: EncodedFrameInfo) => void;
  /** Seal every frame (client-side encryption); give a fixed `level`, or a resume finds its sealed frames changed. */
  sealing?: FrameSealing;
}

/** Where the server's upload stands, and how to check the regenerated stream against it. */
export interface ResumeFrom {
  frames: number;
  wireOffset: number;
  /** Hex chain after `frames` frames. */
  chain: string;
  /** Per-frame chains (hex) and wire ends, when the fast check failed and the caller fetched them. */
  records?: readonly { index: number; wireEnd: number; chain: string }[];
  /**
   * Hex chain after frame 0 as the server recorded it, and the names an older snapferry may have framed the upload
   * under (its stream named the snapshot's directory): frame 0 tells which naming the server holds (resumeNaming).
   * Without it, the stable naming.
   */
  frameZero?: { chain: string; legacyNames: readonly string[] };
}

export interface FramedSend {
  source: FramedUploadSource;
  header: Promise<SendStreamHeader>;
  /** Settles when the whole pipeline has: rejects with the first failure (btrfs send, check, encoder). */
  done: Promise<void>;
  /** Frame and wire offset the upload continues from. */
  start: { frames: number; wireOffset: number; rawOffset: number };
  /** Set when the regenerated stream matched the server's only up to this frame: the upload must rewind to it. */
  rewindTo: number | null;
  /** Stops btrfs send and the pipeline. */
  cancel(): void;
}

export class StreamMismatch extends SnapferryError {}

export async function openFramedSend(options: FramedSendOptions, resume?: ResumeFrom): Promise<FramedSend> {
  // The encoder is made below, once a resume knows where framing starts; until then btrfs send's reads get fresh memory.
  const spares: { from: FrameEncoder | null } = { from: null };
  const chunkSize = options.chunkSize;
  // A sealed stream's chain is over its sealed frames: the prefix is compressed and sealed as it was sent.
  const frameHash = options.sealing ? sealedFrameHash(options.sealing, typeof options.level === 'number' ? options.level : DEFAULT_ZSTD_LEVEL) : undefined;
  const naming: NameChooser =
    resume?.frameZero && resume.frames > 0
      ? resumeNaming({ chunkSize, chain: resume.frameZero.chain, ...(frameHash ? { frameHash } : {}) }, resume.frameZero.legacyNames)
      : stableNaming();
  // Checked and renamed inside the reads, not in stream stages of their own: each stage held a chunk or two whenever
  // the encoder was behind (16 MiB at 4 MiB chunks, issue 22). The renaming follows the check, which holds btrfs's
  // own bytes to the format; the renamer recomputes the command's CRC.
  const check = new SendStreamChecker();
  const rename = new FirstCommandRename(naming);
  const send = await btrfs.sendInChunks(options.snapshotPath, {
    ...(options.parentPath ? { parent: options.parentPath } : {}),
    ...sendOptionsFor(options.sendStream ?? 'v1', await btrfsFeatures()),
    ...(options.signal ? { signal: options.signal } : {}),
    // Read in whole chunks, into memory the encoder is done with: each chunk reaches the encoder as one buffer it
    // takes as it is (no copy), and no buffer is allocated per pipe read (issue 22, docs/performance.md).
    // The renaming changes the first command's length: a first read that much shorter keeps every later one a chunk.
    reads: {
      size: chunkSize,
      firstSize: firstReadSize(chunkSize, path.basename(options.snapshotPath)),
      allocate: () => spares.from?.takeSpare() ?? null,
      step: {
        take: (chunk) => {
          check.take(chunk);
          return rename.take(chunk);
        },
        end: () => {
          check.end();
          return rename.end();
        },
      },
    },
  });
  const checked = send.stream;
  checked.once('error', (err) => check.stopped(err));
  checked.once('close', () => check.stopped(null));
  // Everything cancel() must destroy: a resumed pipeline reads from a generator (prefix.rest) that destroying its
  // source does not wake, so the downstream streams are destroyed too, or `done` would never settle.
  const streams: { destroy(): unknown }[] = [checked];
  const cancel = () => {
    for (const stream of streams) stream.destroy();
  };

  let start: { frames: number; wireOffset: number; rawOffset: number; chain: Buffer } = { frames: 0, wireOffset: 0, rawOffset: 0, chain: Buffer.alloc(32) };
  let rest: AsyncIterable<Buffer> = checked;
  let rewindTo: number | null = null;
  if (resume && resume.frames > 0) {
    const records = resume.records;
    const accept = records
      ? (chunk: HashedChunk) => records[chunk.index]?.chain === chunk.chain.toString('hex')
      : undefined;
    let prefix;
    try {
      prefix = await hashRawPrefix(checked, { chunkSize, frames: resume.frames, ...(accept ? { accept } : {}), ...(frameHash ? { frameHash } : {}) });
    } catch (err) {
      cancel();
      throw err;
    }
    if (!records && prefix.chain.toString('hex') !== resume.chain) {
      cancel();
      throw new StreamMismatch('stream_mismatch', 'the regenerated send stream differs from what the server holds', { retryable: true });
    }
    if (prefix.frames < resume.frames) {
      if (!records) {
        cancel();
        throw new StreamMismatch('stream_mismatch', 'the regenerated send stream is shorter than what the server holds', { retryable: true });
      }
      rewindTo = prefix.frames;
    }
    const wireOffset = prefix.frames === resume.frames ? resume.wireOffset : (records?.[prefix.frames - 1]?.wireEnd ?? 0);
    start = { frames: prefix.frames, wireOffset, rawOffset: prefix.rawOffset, chain: prefix.chain };
    rest = prefix.rest;
  }

  // The encoder hands out each frame's header and payload as the buffers it made (a stream read as bytes would join
  // them into a new one), and makes the next frame only once the source has read the last: the source reads ahead a
  // PATCH body on its own, and frames held before it on top of that were only memory (issue 22, docs/performance.md).
  const encoder: FrameEncoder = new FrameEncoder({
    chunkSize,
    level: options.level,
    frameBuffers: true,
    ...(options.pool ? { pool: options.pool } : {}),
    ...(options.sealing ? { seal: options.sealing } : {}),
    ...(start.frames > 0 ? { start: { frames: start.frames, rawOffset: start.rawOffset, chain: start.chain, wireOffset: start.wireOffset } } : {}),
    onFrame: (frame) => {
      source.frameEnded(frame.wireOffset + frame.wireLength, frame.kind === 'end');
      options.onFrame?.(frame);
    },
  });
  const source = new FramedUploadSource({ stream: encoder, startOffset: start.wireOffset, recycle: (b) => encoder.recycle(b) }, options.maxSlice);
  spares.from = encoder;
  const head = rest === checked ? checked : Readable.from(rest);
  streams.push(head, encoder);
  const done = pipeline(head, encoder);
  done.catch(() => undefined);
  return {
    source,
    header: check.header,
    done,
    start: { frames: start.frames, wireOffset: start.wireOffset, rawOffset: start.rawOffset },
    rewindTo,
    cancel,
  };
}
