/**
 * FrameEncoder: raw `btrfs send` bytes in, framed bytes out (see frame.ts for the format). Memory stays at about
 * one chunk being filled plus one frame waiting downstream: further writes wait while a chunk's worth of frames is
 * unread. With a compression pool, one chunk per worker and one more are in flight as well;
 * they come back in any order and leave in order, and a compressed chunk's raw memory comes back to be filled again.
 *
 * A resumed upload starts mid-stream: `start` (from hashRawPrefix plus the server's wire offset) makes the first
 * frame out be frame N, with the chain and offsets it would have had in one uninterrupted run, so the bytes equal
 * the tail of a single encoder's output from frame N on.
 */
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { ChainHasher, sha256 } from './chain.ts';
import { ChunkCompressor, DEFAULT_ZSTD_LEVEL, validateZstdLevel } from './codec.ts';
import type { FrameCodec } from './codec.ts';
import type { CompressedParts, CompressionPool } from './compression-pool.ts';
import { checkEncoderStart, type EncoderStart } from './encoder-start.ts';
import { DEFAULT_CHUNK_SIZE, dataFrameHeader, encodeEndFrame, validateChunkSize } from './frame.ts';
import type { LevelChooser } from './level-chooser.ts';
import { RawChunker } from './raw-chunker.ts';
import { sealFrame, type FrameSealing } from './frame-seal.ts';

export type { CompressionSample, LevelChooser } from './level-chooser.ts';

export interface FrameEncoderOptions {
  chunkSize?: number;
  /** zstd level (0: no compression), or a chooser asked before every frame; default 3. */
  level?: number | LevelChooser;
  /** Compress on these worker threads instead of this one. */
  pool?: CompressionPool;
  /**
   * Resume point: data frames already sent, their raw bytes and chain (hashRawPrefix gives these), and where frame
   * N starts on the wire (the server's verified offset), so that frame events carry whole-stream wire offsets.
   */
  start?: EncoderStart;
  /** Called after each frame is pushed (also emitted as the 'frame' event). */
  onFrame?: (frame: EncodedFrameInfo) => void;
  /** Seal every data frame's payload under this key (frame-seal.ts); a resume's `start` chain is then over sealed frames. */
  seal?: FrameSealing;
  /**
   * Hand each frame's header and payload out as the buffers they are (object mode), and take the next chunk only once
   * every frame made is read. For a reader that keeps frames as they come (the upload source): read as bytes, a
   * stream joins what it holds into one new buffer, and a stream put in between to undo that held two frames more.
   */
  frameBuffers?: boolean;
}

export interface EncodedFrameInfo {
  kind: 'data' | 'end';
  /** Data: the frame index. End: N, the number of data frames. */
  index: number;
  codec: FrameCodec;
  /** Data: offset of the chunk in the raw stream. End: the total raw length. */
  rawOffset: number;
  rawLength: number;
  payloadLength: number;
  /** First byte of the frame on the wire, counted from the start of the whole stream. */
  wireOffset: number;
  wireLength: number;
  /** The chain after this frame (for the end frame: the chain it carries). */
  chain: Buffer;
}

export class FrameEncoder extends Transform {
  readonly chunkSize: number;
  readonly #chunker: RawChunker;
  readonly #compressor: ChunkCompressor | null;
  readonly #pool: CompressionPool | null;
  readonly #chooser: LevelChooser | null;
  readonly #fixedLevel: number;
  /** Chunks handed to the pool, oldest first; each gets its parts when its worker answers. */
  readonly #jobs: { rawLength: number; parts: CompressedParts | null }[] = [];
  #roomWaiter: (() => void) | null = null;
  readonly #chain: ChainHasher;
  readonly #onFrame: ((frame: EncodedFrameInfo) => void) | undefined;
  readonly #seal: FrameSealing | null;
  #rawOffset: number;
  #wireOffset: number;
  /** Set when resuming after a short (hence last) chunk: only the end frame may follow. */
  readonly #closedToData: boolean;

  constructor(opts: FrameEncoderOptions = {}) {
    super(opts.frameBuffers ? { readableObjectMode: true, readableHighWaterMark: 2 } : {});
    this.chunkSize = validateChunkSize(opts.chunkSize ?? DEFAULT_CHUNK_SIZE);
    this.#chunker = new RawChunker(this.chunkSize);
    const level = opts.level ?? DEFAULT_ZSTD_LEVEL;
    this.#chooser = typeof level === 'number' ? null : level;
    this.#fixedLevel = typeof level === 'number' ? validateZstdLevel(level) : DEFAULT_ZSTD_LEVEL;
    this.#pool = opts.pool ?? null;
    this.#compressor = this.#pool ? null : new ChunkCompressor(this.#fixedLevel);
    this.#onFrame = opts.onFrame;
    this.#seal = opts.seal ?? null;
    const start = checkEncoderStart(opts.start, this.chunkSize);
    this.#chain = new ChainHasher({ chain: start.chain, frames: start.frames });
    this.#rawOffset = start.rawOffset;
    this.#closedToData = start.closedToData;
    this.#wireOffset = start.wireOffset;
  }

  /**
   * Takes back a frame's payload once nothing reads it any more (the server acknowledged it). A raw frame's payload
   * is a whole chunk's memory, and the next chunk is filled in it instead of in a new 4 MiB buffer; a zstd payload
   * from the pool goes back to it for a later payload (CompressionPool.recycle). Each keeps only its own memory and
   * ignores anything else.
   */
  recycle(payload: Buffer): void {
    this.#chunker.recycle(payload);
    this.#pool?.recycle(payload);
  }

  /**
   * Memory of a chunk nothing uses any more (see recycle), for a source that reads the next chunk into it itself
   * (btrfs send's reads, core/btrfs/pipe-reads.ts), or null. Written whole, it comes back as one input chunk.
   */
  takeSpare(): Buffer | null {
    return this.#chunker.takeSpare();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      if (this.#closedToData && chunk.length > 0) {
        throw new RangeError('resumed after the short last chunk, yet more raw data came: the stream has changed');
      }
      for (const raw of this.#chunker.push(chunk)) this.#addChunk(raw);
      this.#whenRoom(this.#maxJobs(), callback, true);
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      const last = this.#chunker.flush();
      if (last !== null) this.#addChunk(last);
    } catch (err) {
      callback(err as Error);
      return;
    }
    this.#whenRoom(0, () => {
      try {
        this.#pushEnd();
        callback();
      } catch (err) {
        callback(err as Error);
      }
    });
  }

  #maxJobs(): number {
    return this.#pool ? this.#pool.inUse + 1 : 0;
  }

  /**
   * Calls `done` once at most `max` chunks wait for their workers and, with `read`, once less than a chunk of frames
   * waits to be read. Frames from the pool are pushed when their worker answers, after Transform has already
   * checked its readable side for this write: without the second condition a reader slower than `btrfs send` (an
   * upload) let frames pile up here without bound (170 MB in one LAN push).
   */
  #whenRoom(max: number, done: () => void, read = false): void {
    // In object mode readableLength counts buffers: no frame may wait unread there.
    const unread = () => (this.readableObjectMode ? this.readableLength > 0 : this.readableLength >= this.chunkSize);
    const room = () => this.#jobs.length <= max && (!read || !unread());
    if (room()) {
      done();
      return;
    }
    this.#roomWaiter = () => {
      if (!room()) return;
      this.#roomWaiter = null;
      done();
    };
  }

  override _read(size: number): void {
    super._read(size);
    // Readable calls _read before it takes the bytes being read off the buffer: look once they are gone.
    process.nextTick(() => this.#roomWaiter?.());
  }

  #addChunk(raw: Buffer): void {
    const level = this.#chooser ? this.#chooser.next() : this.#fixedLevel;
    if (!this.#pool) {
      const rawHash = sha256(raw);
      const started = process.hrtime.bigint();
      const { codec, payload } = this.#compressor!.compress(raw, level);
      this.#pushData(raw.length, { codec, payload, rawHash, level, compressNs: Number(process.hrtime.bigint() - started), spare: null });
      return;
    }
    const job: { rawLength: number; parts: CompressedParts | null } = { rawLength: raw.length, parts: null };
    this.#jobs.push(job);
    this.#pool.run(raw, level).then(
      (parts) => {
        if (parts.spare) this.#chunker.recycle(parts.spare);
        job.parts = parts;
        this.#pushReady();
      },
      (err: unknown) => this.destroy(err as Error),
    );
  }

  /** Pushes the finished chunks at the head of the queue, in order. */
  #pushReady(): void {
    if (this.destroyed) return;
    try {
      while (this.#jobs[0]?.parts) {
        const job = this.#jobs.shift()!;
        this.#pushData(job.rawLength, job.parts!);
      }
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    this.#roomWaiter?.();
  }

  #pushEnd(): void {
    const chain = this.#chain.digest();
    const frameCount = this.#chain.frames;
    const end = encodeEndFrame({ chunkSize: this.chunkSize, frameCount, totalRaw: this.#rawOffset, chain });
    this.push(end);
    this.#report({
      kind: 'end',
      index: frameCount,
      codec: 'raw',
      rawOffset: this.#rawOffset,
      rawLength: 0,
      payloadLength: 0,
      wireOffset: this.#wireOffset,
      wireLength: end.length,
      chain,
    });
    this.#wireOffset += end.length;
  }

  #pushData(rawLength: number, parts: CompressedParts): void {
    const index = this.#chain.frames;
    // The seal is a step of its own, after compression (whose measure the chooser gets) and before the header.
    const sent = this.#seal ? sealFrame(this.#seal, index, parts) : parts;
    // A payload sealed is copied into its seal: its memory is free to be used again, as recycle() would have it.
    if (sent !== parts) this.recycle(parts.payload);
    const header = dataFrameHeader(rawLength, sent, { chunkSize: this.chunkSize, index });
    this.#chooser?.observe({ level: parts.level, rawOffset: this.#rawOffset, rawLength, payloadLength: parts.payload.length, compressNs: parts.compressNs });
    this.push(header);
    this.push(sent.payload);
    const chain = this.#chain.update(sent.rawHash);
    const wireLength = header.length + sent.payload.length;
    this.#report({
      kind: 'data',
      index,
      codec: parts.codec,
      rawOffset: this.#rawOffset,
      rawLength,
      payloadLength: sent.payload.length,
      wireOffset: this.#wireOffset,
      wireLength,
      chain,
    });
    this.#rawOffset += rawLength;
    this.#wireOffset += wireLength;
  }

  #report(info: EncodedFrameInfo): void {
    this.#onFrame?.(info);
    this.emit('frame', info);
  }
}
