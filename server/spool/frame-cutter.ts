/**
 * A request's bytes cut into verified frames, each with exactly its bytes on the wire: what both the local spool
 * (append.ts) and the archive's segments (server/archive/segment-uploads.ts) store, byte for byte as they came. The
 * bytes are the request's own buffers (views, no copy); what arrived after the last verified frame (part of the next
 * one) stays here until it verifies or the request ends.
 */
import { FrameParser, type FrameParserOptions, type VerifiedFrame } from '../../core/wire/index.ts';

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

export class FrameCutter {
  readonly parser: FrameParser;
  readonly #pending: Buffer[] = [];
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
    this.#pending.push(chunk);
    let failure: unknown = null;
    try {
      this.parser.push(chunk);
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

  /** The wire offset just past the last frame cut. */
  get end(): number {
    return this.#end;
  }

  /** The bytes that arrived after the last frame cut (all of them, if a push failed). */
  rest(): Buffer[] {
    return [...this.#pending];
  }
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
