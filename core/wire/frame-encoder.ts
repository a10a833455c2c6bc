/**
 * FrameEncoder: raw `btrfs send` bytes in, framed bytes out (see frame.ts for the format). Memory stays at about
 * one chunk being filled plus one frame waiting downstream: Transform holds further writes while its readable
 * side is above the high-water mark.
 *
 * A resumed upload starts mid-stream: `start` (from hashRawPrefix plus the server's wire offset) makes the first
 * frame out be frame N, with the chain and offsets it would have had in one uninterrupted run, so the bytes equal
 * the tail of a single encoder's output from frame N on.
 */
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { CHAIN_ZERO, ChainHasher, HASH_SIZE } from './chain.ts';
import { ChunkCompressor, DEFAULT_ZSTD_LEVEL } from './codec.ts';
import type { FrameCodec } from './codec.ts';
import { DEFAULT_CHUNK_SIZE, FRAME_HEADER_SIZE, encodeDataFrame, encodeEndFrame, validateChunkSize } from './frame.ts';
import { RawChunker } from './raw-chunker.ts';
import type { RawResumePoint } from './raw-prefix.ts';

export interface FrameEncoderOptions {
  chunkSize?: number;
  /** zstd level, default 3. */
  level?: number;
  /**
   * Resume point: data frames already sent, their raw bytes and chain (hashRawPrefix gives these), and where frame
   * N starts on the wire (the server's verified offset), so that frame events carry whole-stream wire offsets.
   */
  start?: RawResumePoint & { wireOffset: number };
  /** Called after each frame is pushed (also emitted as the 'frame' event). */
  onFrame?: (frame: EncodedFrameInfo) => void;
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
  readonly #compressor: ChunkCompressor;
  readonly #chain: ChainHasher;
  readonly #onFrame: ((frame: EncodedFrameInfo) => void) | undefined;
  #rawOffset: number;
  #wireOffset: number;
  /** Set when resuming after a short (hence last) chunk: only the end frame may follow. */
  readonly #closedToData: boolean;

  constructor(opts: FrameEncoderOptions = {}) {
    super();
    this.chunkSize = validateChunkSize(opts.chunkSize ?? DEFAULT_CHUNK_SIZE);
    this.#chunker = new RawChunker(this.chunkSize);
    this.#compressor = new ChunkCompressor(opts.level ?? DEFAULT_ZSTD_LEVEL);
    this.#onFrame = opts.onFrame;
    const start = opts.start ?? { frames: 0, rawOffset: 0, chain: CHAIN_ZERO, wireOffset: 0 };
    const { frames, rawOffset } = start;
    const full = frames * this.chunkSize;
    // After N frames the raw offset is N full chunks, or a bit less if the last one was short (end of stream).
    const consistent = frames === 0 ? rawOffset === 0 : rawOffset > full - this.chunkSize && rawOffset <= full;
    if (!Number.isSafeInteger(rawOffset) || !consistent || start.chain.length !== HASH_SIZE) {
      throw new RangeError(`bad resume point: ${frames} frames of ${this.chunkSize} bytes and raw offset ${rawOffset}`);
    }
    this.#chain = new ChainHasher({ chain: start.chain, frames });
    this.#rawOffset = rawOffset;
    this.#closedToData = rawOffset !== full;
    const wireOffset = start.wireOffset;
    if (!Number.isSafeInteger(wireOffset) || wireOffset < (frames > 0 ? frames * FRAME_HEADER_SIZE : 0)) {
      throw new RangeError(`bad resume point: wire offset ${wireOffset} for ${frames} frames`);
    }
    this.#wireOffset = wireOffset;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      if (this.#closedToData && chunk.length > 0) {
        throw new RangeError('resumed after the short last chunk, yet more raw data came: the stream has changed');
      }
      for (const raw of this.#chunker.push(chunk)) this.#pushData(raw);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      const last = this.#chunker.flush();
      if (last !== null) this.#pushData(last);
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
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  #pushData(raw: Buffer): void {
    const index = this.#chain.frames;
    const frame = encodeDataFrame(raw, { chunkSize: this.chunkSize, index, compressor: this.#compressor });
    this.push(frame.header);
    this.push(frame.payload);
    const chain = this.#chain.update(frame.rawHash);
    const wireLength = frame.header.length + frame.payload.length;
    this.#report({
      kind: 'data',
      index,
      codec: frame.codec,
      rawOffset: this.#rawOffset,
      rawLength: raw.length,
      payloadLength: frame.payload.length,
      wireOffset: this.#wireOffset,
      wireLength,
      chain,
    });
    this.#rawOffset += raw.length;
    this.#wireOffset += wireLength;
  }

  #report(info: EncodedFrameInfo): void {
    this.#onFrame?.(info);
    this.emit('frame', info);
  }
}
