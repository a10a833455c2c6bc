/**
 * Which raw offset an upload's wire offset stands for. The encoder runs ahead of the upload, so the raw bytes it has
 * framed say nothing about what the server has; the frames it reports ((wireEnd, rawEnd) pairs) turn the upload's
 * wire offset into raw bytes. Inside a frame the raw offset is interpolated, so a slow link's multi-second frames
 * still move the figure; on frame boundaries it is exact.
 *
 * Only frames the upload may still be inside are kept: the encoder is at most a few frames ahead (backpressure),
 * and the upload never goes back further than `keepWireBytes` behind the furthest offset it reached (a retry
 * resumes from the server's offset, which is at least where the current PATCH began).
 */
export interface FrameEnd {
  wireEnd: number;
  rawEnd: number;
}

export class WireToRaw {
  /** The end of the last frame dropped (or the resume point): everything before it is known to be sent. */
  #base: FrameEnd;
  /** Frames after the base, in order; `#head` skips the dropped ones without shifting the array each time. */
  #frames: FrameEnd[] = [];
  #head = 0;
  #furthest: number;

  constructor(
    start: FrameEnd,
    private readonly keepWireBytes: number,
  ) {
    this.#base = { ...start };
    this.#furthest = start.wireEnd;
  }

  /** A frame the encoder produced (frames come in stream order). */
  add(frame: FrameEnd): void {
    this.#frames.push(frame);
  }

  /** Raw bytes the wire offset `wire` stands for. */
  rawAt(wire: number): number {
    if (wire > this.#furthest) {
      this.#furthest = wire;
      this.#dropBefore(wire - this.keepWireBytes);
    }
    let before = this.#base;
    if (wire <= before.wireEnd) return before.rawEnd;
    for (let i = this.#head; i < this.#frames.length; i++) {
      const frame = this.#frames[i]!;
      if (wire <= frame.wireEnd) {
        const share = (wire - before.wireEnd) / (frame.wireEnd - before.wireEnd);
        return Math.round(before.rawEnd + share * (frame.rawEnd - before.rawEnd));
      }
      before = frame;
    }
    // Past the last frame reported: cannot happen (bytes are sent only once framed); the last known end is the answer.
    return before.rawEnd;
  }

  /** Frames kept, for tests of the memory bound. */
  get kept(): number {
    return this.#frames.length - this.#head;
  }

  #dropBefore(wire: number): void {
    while (this.#head < this.#frames.length && this.#frames[this.#head]!.wireEnd <= wire) {
      this.#base = this.#frames[this.#head]!;
      this.#head++;
    }
    if (this.#head > 64 && this.#head * 2 > this.#frames.length) {
      this.#frames = this.#frames.slice(this.#head);
      this.#head = 0;
    }
  }
}
