/**
 * FrameParser: the server's incremental verifier. Push wire bytes in any slices as they arrive; each frame is
 * verified the moment its last byte is in: header CRC and bounds, its place in the sequence (index, raw offset,
 * chunk size rule), payload decodes to exactly rawLength bytes with the SHA-256 in the header, and at the end
 * frame the frame count, total raw length and chain. Only the unverified tail is held (at most one header plus one
 * payload, i.e. FRAME_HEADER_SIZE + chunkSize), and a header is judged before its payload is awaited, so a header
 * that claims a huge length is refused at once.
 *
 * A sealed frame (frame-seal.ts) is verified the same way without a key: its header's hash is the SHA-256 of the
 * sealed payload as it came. With `sealing` (a restore holding the key) it is then opened and decoded; without, it
 * has no `raw`, and whoever wanted the raw bytes (FrameDecoder, a server feeding btrfs receive) refuses it.
 *
 * State is a handful of numbers and the chain, all at a frame boundary (`wireOffsetVerified`). A server that saved
 * it can build a new parser from it after a restart and push bytes from `wireOffsetVerified` on.
 *
 * After a FrameError the parser stays failed (every later call rethrows it); `state()` still tells the last good
 * frame boundary, and frames verified before the error were already delivered to `onFrame`.
 */
import { ByteQueue } from './byte-queue.ts';
import { ChainHasher, sha256Pieces } from './chain.ts';
import { ChunkDecompressor, PayloadDecodeError } from './codec.ts';
import type { FrameCodec } from './codec.ts';
import { FRAME_HEADER_SIZE, parseFrameHeader, validateChunkSize } from './frame.ts';
import type { FrameHeader } from './frame.ts';
import { FrameError } from './frame-error.ts';
import type { FrameErrorCode } from './frame-error.ts';
import { checkState, streamStart, type FrameParserState } from './frame-parser-state.ts';
import { sequenceFault } from './frame-sequence.ts';
import { asBuffer } from './raw-chunker.ts';
import { openFrame, type FrameSealing } from './frame-seal.ts';
import { notSealedError } from '../crypto/errors.ts';

export type { FrameParserState } from './frame-parser-state.ts';

export interface VerifiedFrame {
  kind: 'data' | 'end';
  /** Data: the frame index. End: N, the number of data frames. */
  index: number;
  codec: FrameCodec;
  /** The payload travels sealed (client-side encryption); `rawHash` is then the sealed payload's hash. */
  sealed: boolean;
  wireStart: number;
  wireEnd: number;
  /** Data: raw offset of the chunk. End: total raw length. */
  rawOffset: number;
  rawLength: number;
  /** The hash the header carries, checked: of the raw chunk, or of the sealed payload; null for the end frame. */
  rawHash: Buffer | null;
  /** Chain after this frame (for the end frame: c_N, which it carried). */
  chain: Buffer;
  /**
   * The decoded chunk, with `keepRaw`, in order: one buffer for a zstd or opened sealed frame; for a raw frame, views
   * of the buffers pushed, as they arrived (at most MAX_RAW_PIECES of them). A sealed frame has it only with `sealing`.
   */
  raw?: Buffer[];
}

export interface FrameParserOptions {
  /** The transfer's chunk size if known (the server knows it from the upload metadata); else learnt from frame 0. */
  chunkSize?: number;
  /** Continue from a saved state instead of the start of the stream. */
  state?: FrameParserState;
  /** Keep each frame's decoded bytes in `raw` (FrameDecoder does; a verifying store does not need them). */
  keepRaw?: boolean;
  /** Open sealed frames with this key (their `raw` with `keepRaw`): a wrong key is SealError `wrong_key`, damage `frame_corrupt`. */
  sealing?: FrameSealing;
  onFrame?: (frame: VerifiedFrame) => void;
}

export class FrameParser {
  readonly #decompressor = new ChunkDecompressor();
  readonly #keepRaw: boolean;
  readonly #sealing: FrameSealing | null;
  readonly #onFrame: ((frame: VerifiedFrame) => void) | undefined;
  #chunkSize: number | null;
  #chain: ChainHasher;
  #rawOffset: number;
  #wireVerified: number;
  #ended: boolean;
  /** Unverified bytes after #wireVerified (minus a header already taken), as received. */
  readonly #pending = new ByteQueue();
  /** Header of the frame being received, already checked; its bytes are no longer in #pending. */
  #header: FrameHeader | null = null;
  #failed: Error | null = null;

  constructor(opts: FrameParserOptions = {}) {
    this.#keepRaw = opts.keepRaw ?? false;
    this.#sealing = opts.sealing ?? null;
    this.#onFrame = opts.onFrame;
    const s = opts.state ?? streamStart(opts.chunkSize ?? null);
    if (opts.chunkSize !== undefined && s.chunkSize !== opts.chunkSize) {
      throw new RangeError(`saved state has chunk size ${s.chunkSize}, options say ${opts.chunkSize}`);
    }
    this.#chunkSize = s.chunkSize === null ? null : validateChunkSize(s.chunkSize);
    checkState(s);
    this.#chain = new ChainHasher({ chain: s.chain, frames: s.framesVerified });
    this.#rawOffset = s.rawOffset;
    this.#wireVerified = s.wireOffsetVerified;
    this.#ended = s.ended;
  }

  state(): FrameParserState & { pendingBytes: number } {
    return {
      chunkSize: this.#chunkSize,
      framesVerified: this.#chain.frames,
      wireOffsetVerified: this.#wireVerified,
      rawOffset: this.#rawOffset,
      chain: this.#chain.digest(),
      ended: this.#ended,
      pendingBytes: this.#pending.length + (this.#header === null ? 0 : FRAME_HEADER_SIZE),
    };
  }

  /** Takes the next wire bytes; returns the frames they completed, verified, in order. Throws FrameError. */
  push(data: Uint8Array): VerifiedFrame[] {
    if (this.#failed !== null) throw this.#failed;
    const out: VerifiedFrame[] = [];
    if (data.length === 0) return out;
    this.#pending.push(asBuffer(data));
    try {
      for (;;) {
        if (this.#ended) {
          if (this.#pending.length > 0) this.#fail('frame_after_end', `${this.#pending.length} bytes follow the end frame`);
          break;
        }
        if (this.#header === null) {
          if (this.#pending.length < FRAME_HEADER_SIZE) break;
          this.#header = this.#checkSequence(parseFrameHeader(this.#pending.take(FRAME_HEADER_SIZE), this.#position()));
        }
        const payloadLength = this.#header.kind === 'data' ? this.#header.payloadLength : 0;
        if (this.#pending.length < payloadLength) break;
        // A zstd or sealed payload is only read here and now (decoded, or hashed and opened into new memory): it is
        // joined in memory that the next one reuses. A raw payload is the frame's bytes and leaves with the frame as
        // the pieces it arrived in (no copy).
        const h = this.#header;
        const transient = h.kind === 'data' && (h.codec === 'zstd' || h.sealed);
        const payload = transient ? [this.#pending.take(payloadLength, zstdPayloadScratch(payloadLength))] : rawPieces(this.#pending, payloadLength);
        const frame = this.#verify(this.#header, payload);
        this.#header = null;
        out.push(frame);
        this.#onFrame?.(frame);
      }
    } catch (err) {
      // Anything but a FrameError (or a SealError from opening) is a bug here, not bad input: keep it as it is.
      this.#failed = err as Error;
      throw err;
    }
    this.#pending.compactTail();
    return out;
  }

  /** The input is over: throws stream_truncated unless the end frame was verified. */
  finish(): void {
    if (this.#failed !== null) throw this.#failed;
    if (this.#ended) return;
    const pending = this.state().pendingBytes;
    this.#failed = this.#error(
      'stream_truncated',
      `stream ended ${pending > 0 ? `inside frame ${this.#chain.frames} (${pending} bytes of it)` : 'before the end frame'}`,
    );
    throw this.#failed;
  }

  /** Sequence rules (frame-sequence.ts), checked on the header alone so a bad frame is refused before its payload is awaited. */
  #checkSequence(h: FrameHeader): FrameHeader {
    if (this.#chunkSize === null) this.#chunkSize = h.chunkSize;
    const fault = sequenceFault(h, { chunkSize: this.#chunkSize, frames: this.#chain.frames, rawOffset: this.#rawOffset });
    if (fault !== undefined) this.#fail(fault.code, fault.message, fault.details);
    return h;
  }

  #verify(h: FrameHeader, payload: Buffer[]): VerifiedFrame {
    const wireStart = this.#wireVerified;
    const wireEnd = wireStart + FRAME_HEADER_SIZE + byteLength(payload);
    if (h.kind === 'end') {
      const chain = this.#chain.digest();
      if (!chain.equals(h.chain)) {
        this.#fail('frame_chain_mismatch', 'end frame chain differs from the chain of the frames verified', {
          expectedChain: chain.toString('hex'),
          endFrameChain: h.chain.toString('hex'),
        });
      }
      this.#wireVerified = wireEnd;
      this.#ended = true;
      const { frameCount: index, totalRaw: rawOffset } = h;
      return { kind: 'end', index, codec: 'raw', sealed: false, wireStart, wireEnd, rawOffset, rawLength: 0, rawHash: null, chain };
    }
    let raw: Buffer[] | undefined;
    let rawHash: Buffer;
    if (this.#sealing !== null && !h.sealed) {
      // With a key, only sealed frames are the user's: anyone can make a plain frame that verifies.
      throw notSealedError(h.index, this.#sealing.key.id.toString('hex'));
    }
    if (h.sealed) {
      rawHash = sha256Pieces(payload);
      if (!rawHash.equals(h.rawHash)) this.#fail('frame_corrupt', `SHA-256 of the sealed ${h.codec} payload differs from header`);
      // The GCM tag vouches for the bytes inside; their decoding is still checked (length, one zstd frame).
      if (this.#sealing !== null) raw = [this.#decode(h, openFrame(this.#sealing, h.index, payload[0] as Buffer))];
    } else {
      raw = h.codec === 'raw' ? this.#decodeRaw(h, payload) : [this.#decode(h, payload[0] as Buffer)];
      rawHash = sha256Pieces(raw);
      if (!rawHash.equals(h.rawHash)) this.#fail('frame_corrupt', `SHA-256 of the ${h.codec} chunk differs from header`);
    }
    const chain = this.#chain.update(rawHash);
    this.#rawOffset += h.rawLength;
    this.#wireVerified = wireEnd;
    const frame: VerifiedFrame = {
      kind: 'data',
      index: h.index,
      codec: h.codec,
      sealed: h.sealed,
      wireStart,
      wireEnd,
      rawOffset: h.rawOffset,
      rawLength: h.rawLength,
      rawHash,
      chain,
    };
    if (this.#keepRaw && raw !== undefined) frame.raw = raw;
    return frame;
  }

  #decodeRaw(h: FrameHeader & { kind: 'data' }, payload: Buffer[]): Buffer[] {
    try {
      return this.#decompressor.decodeRaw(payload, h.rawLength);
    } catch (err) {
      if (!(err instanceof PayloadDecodeError)) throw err;
      return this.#fail('frame_corrupt', err.message, { codec: h.codec, sealed: h.sealed });
    }
  }

  #decode(h: FrameHeader & { kind: 'data' }, payload: Buffer): Buffer {
    try {
      return this.#decompressor.decode(h.codec, payload, h.rawLength);
    } catch (err) {
      if (!(err instanceof PayloadDecodeError)) throw err;
      return this.#fail('frame_corrupt', err.message, { codec: h.codec, sealed: h.sealed });
    }
  }

  #position(): { frameIndex: number; wireOffset: number } {
    return { frameIndex: this.#chain.frames, wireOffset: this.#wireVerified };
  }

  #error(code: FrameErrorCode, msg: string, cause?: unknown, extra: Record<string, unknown> = {}): FrameError {
    const at = this.#position();
    const message = `frame ${at.frameIndex} at wire offset ${at.wireOffset}: ${msg}`;
    return new FrameError(code, message, { ...at, ...extra }, cause);
  }

  #fail(code: FrameErrorCode, msg: string, extra: Record<string, unknown> = {}): never {
    throw this.#error(code, msg, undefined, extra);
  }
}

/**
 * A raw frame's pieces are handed on as they are (to the spool's write, the receive's pipe), each a call of its own
 * there: a sender of tiny pieces gets them joined, so no frame costs more than this many.
 */
export const MAX_RAW_PIECES = 256;

function rawPieces(pending: ByteQueue, n: number): Buffer[] {
  const pieces = pending.takePieces(n);
  return pieces.length > MAX_RAW_PIECES ? [Buffer.concat(pieces, n)] : pieces;
}

function byteLength(pieces: readonly Buffer[]): number {
  let n = 0;
  for (const p of pieces) n += p.length;
  return n;
}

/**
 * One buffer per thread for joining zstd payloads that arrived in pieces (64 KiB network reads): each is decoded
 * before push() returns, so no two uses overlap. It saves a fresh payload-sized buffer per frame, which the server
 * made for every frame of every upload (about 0.7 GB of short-lived memory per GB of stream at level 1).
 */
let zstdScratch = Buffer.alloc(0);
function zstdPayloadScratch(n: number): Buffer {
  if (zstdScratch.length < n) zstdScratch = Buffer.allocUnsafeSlow(n);
  return zstdScratch;
}

