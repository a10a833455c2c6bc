/**
 * A request's bytes cut into verified frames, each with exactly its bytes on the wire: what both the local spool
 * (append.ts) and the archive's segments (server/archive/segment-uploads.ts) store, byte for byte as they came. The
 * bytes are the request's own buffers (views, no copy); what arrived after the last verified frame (part of the next
 * one) stays here until it verifies or the request ends.
 */
import { FrameParser, type FrameParserOptions, type VerifiedFrame } from '../../core/wire/index.ts';
import { isChunkMemory } from '../../core/wire/chunk-memory.ts';

export interface CutFrame {
  frame: VerifiedFrame;
  /** The frame's wire bytes, in order: views of the pushed chunks. */
  parts: Buffer[];
}

/** What one push gave: the frames it completed, and the error that stopped it (after them), if one did. */
export interface CutResult {
  frames: CutFrame[];
  failure: unknown;
}

/** A chunk shorter than this is copied into a shared slab, so that neighbouring small chunks become one piece. */
const SMALL_CHUNK = 4096;
const SLAB_SIZE = 64 * 1024;

export class FrameCutter {
  readonly parser: FrameParser;
  readonly #pending: Buffer[] = [];
  #slab: Buffer | null = null;
  #slabUsed = 0;
  /** Frames the parser verified during the push in progress, delivered even when a later one in the chunk fails. */
  readonly #verified: VerifiedFrame[] = [];
  #end: number;

  constructor(options: Omit<FrameParserOptions, 'onFrame'>) {
    this.parser = new FrameParser({ ...options, onFrame: (frame) => this.#verified.push(frame) });
    this.#end = this.parser.state().wireOffsetVerified;
  }

  /**
   * Takes the next wire bytes; returns the frames they completed and, when a frame failed (a FrameError) after
   * them, that failure: the frames verified before it in the same chunk are still frames the client sent, verified.
   */
  push(chunk: Buffer): CutResult {
    // Chunk memory (a request's bytes as they arrived, server/spool/arrival-memory.ts) is in slabs already.
    const piece = chunk.length < SMALL_CHUNK && !isChunkMemory(chunk) ? this.#slabbed(chunk) : chunk;
    appendJoined(this.#pending, piece);
    let failure: unknown = null;
    try {
      this.parser.push(piece);
    } catch (err) {
      failure = err;
    }
    const frames = this.#verified.splice(0).map((frame) => {
      const parts = takeFront(this.#pending, frame.wireEnd - this.#end);
      this.#end = frame.wireEnd;
      return { frame, parts };
    });
    return { frames, failure };
  }

  /**
   * A small chunk copied into the slab, as a view that continues the slab's last one. A line or a client that
   * delivers a few bytes a segment sends a frame in hundreds of thousands of chunks; kept each as its own Buffer (here
   * and in the parser's queue) until the frame verified, a 4 MiB frame in 1-byte chunks held about 1.7 GB of serve.
   * Views that continue each other are joined into one (appendJoined, ByteQueue.push), so such a frame is held in
   * about 64 pieces of 64 KiB.
   */
  #slabbed(chunk: Buffer): Buffer {
    if (this.#slab === null || this.#slab.length - this.#slabUsed < chunk.length) {
      this.#slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      this.#slabUsed = 0;
    }
    const start = this.#slabUsed;
    chunk.copy(this.#slab, start);
    this.#slabUsed += chunk.length;
    return this.#slab.subarray(start, this.#slabUsed);
  }

  /** The wire offset just past the last frame cut. */
  get end(): number {
    return this.#end;
  }

  /** The bytes that arrived after the last frame cut (all of them, if a push failed). */
  rest(): Buffer[] {
    return [...this.#pending];
  }
}

/** Appends `piece` to `buffers`, joined to the last one when it continues it in memory (the same slab). */
export function appendJoined(buffers: Buffer[], piece: Buffer): void {
  const last = buffers[buffers.length - 1];
  if (last !== undefined && continues(last, piece)) {
    buffers[buffers.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + piece.length);
  } else if (piece.length > 0) {
    buffers.push(piece);
  }
}

/** Whether `next` starts in memory exactly where `prev` ends. */
export function continues(prev: Buffer, next: Buffer): boolean {
  return prev.buffer === next.buffer && prev.byteOffset + prev.length === next.byteOffset;
}

/**
 * Removes the first `n` bytes from `buffers` (in place) and returns them as views, without copying. One splice at
 * the end, not a shift per buffer: a frame can come in hundreds of thousands of pieces (a line that delivers a few
 * bytes a segment, or a client that writes them so), and V8 shifts an array that long by moving every element, so a
 * shift per piece was quadratic: 220,000 pieces of one 4 MiB frame kept the server's only thread busy for minutes,
 * reading no other request (the slow-link stall of issue 22).
 */
export function takeFront(buffers: Buffer[], n: number): Buffer[] {
  const taken: Buffer[] = [];
  let left = n;
  let used = 0;
  while (left > 0) {
    const head = buffers[used];
    if (head === undefined) {
      buffers.splice(0, used);
      throw new RangeError(`${left} bytes short of a verified frame`);
    }
    if (head.length <= left) {
      taken.push(head);
      used++;
      left -= head.length;
    } else {
      taken.push(head.subarray(0, left));
      buffers[used] = head.subarray(left);
      left = 0;
    }
  }
  buffers.splice(0, used);
  return taken;
}
