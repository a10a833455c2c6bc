/**
 * Per-chunk compression. Each chunk is one independent zstd frame, so any frame decodes alone (the server
 * verifies frames one by one, and a resumed upload re-frames from chunk N without the history before it).
 *
 * We use the low-level binding rather than zstd-napi's Decompressor: that one sizes its output from the zstd
 * frame's own content-size field, so a hostile payload could make us allocate whatever it claims. Here the output
 * buffer is exactly the frame header's rawLength, already checked against the transfer's chunk size.
 */
import binding from 'zstd-napi/binding.js';
import { chunkMemory } from './chunk-memory.ts';
import { ZstdChunkCompressor } from './zstd-chunk.mjs';

export type FrameCodec = 'raw' | 'zstd';

export const DEFAULT_ZSTD_LEVEL = 3;

/** Level 0 means "do not compress": every frame goes raw (a LAN where zstd would be the bottleneck). */
export const NO_COMPRESSION = 0;

export function validateZstdLevel(level: number): number {
  if (level === NO_COMPRESSION) return level;
  const min = binding.minCLevel();
  const max = binding.maxCLevel();
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new RangeError(`zstd level must be an integer in ${min}..${max}, got ${level}`);
  }
  return level;
}

export interface CompressedChunk {
  codec: FrameCodec;
  /** The zstd frame, or `raw` itself when compression does not shrink it (so payload.length <= raw.length). */
  payload: Buffer;
}

/** One compression context and one scratch buffer, reused for every chunk of a stream. */
export class ChunkCompressor {
  readonly level: number;
  readonly #zstd = new ZstdChunkCompressor();

  constructor(level: number = DEFAULT_ZSTD_LEVEL) {
    this.level = validateZstdLevel(level);
  }

  /** `level` overrides the constructor's for this chunk (the auto policy changes it as it measures). */
  compress(raw: Buffer, level: number = this.level): CompressedChunk {
    return this.#zstd.compress(raw, level);
  }
}

/** Thrown by ChunkDecompressor; the frame layer wraps it into a FrameError with the frame's position. */
export class PayloadDecodeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PayloadDecodeError';
  }
}

/**
 * The thread's one decompression context, made at the first zstd frame. A decode runs to its end synchronously, so
 * every parser of the thread can share it: a server made one per PATCH (a parser per request), about 37 KB of native
 * memory each that only a full collection gave back, and none at all for raw frames.
 */
let sharedDctx: InstanceType<typeof binding.DCtx> | null = null;

/** Decodes frames' payloads, with the thread's one zstd context. */
export class ChunkDecompressor {
  get #dctx(): InstanceType<typeof binding.DCtx> {
    return (sharedDctx ??= new binding.DCtx());
  }

  /** A raw payload in pieces: returned as they are once their length is the header's. */
  decodeRaw(pieces: Buffer[], rawLength: number): Buffer[] {
    let length = 0;
    for (const p of pieces) length += p.length;
    if (length !== rawLength) throw new PayloadDecodeError(`raw payload is ${length} bytes, header says ${rawLength}`);
    return pieces;
  }

  /**
   * Decodes `payload` into exactly `rawLength` bytes or throws PayloadDecodeError. A raw payload is returned as is
   * (it may alias the caller's buffer). A zstd payload must be exactly one zstd frame, with nothing before or after.
   */
  decode(codec: FrameCodec, payload: Buffer, rawLength: number): Buffer {
    if (codec === 'raw') {
      if (payload.length !== rawLength) {
        throw new PayloadDecodeError(`raw payload is ${payload.length} bytes, header says ${rawLength}`);
      }
      return payload;
    }
    let frameSize: number;
    try {
      frameSize = binding.findFrameCompressedSize(payload);
    } catch (err) {
      throw new PayloadDecodeError(`zstd payload is not a zstd frame: ${(err as Error).message}`, { cause: err });
    }
    if (frameSize !== payload.length) {
      throw new PayloadDecodeError(`zstd payload holds ${payload.length - frameSize} bytes after its zstd frame`);
    }
    // Memory a receive's pipe took whole is decoded into again (chunk-memory.ts); the decode fills every byte of it.
    const out = chunkMemory(rawLength);
    let n: number;
    try {
      n = this.#dctx.decompress(out, payload);
    } catch (err) {
      throw new PayloadDecodeError(`zstd payload does not decode to ${rawLength} bytes: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (n !== rawLength) throw new PayloadDecodeError(`zstd payload decodes to ${n} bytes, header says ${rawLength}`);
    return out;
  }
}
