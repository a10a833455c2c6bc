/**
 * The source tus-js-client reads a framed stream from (its `fileReader` option). tus-js-client's own stream source
 * is unsafe here: handed a child's stdout it detaches its listener between chunks, so a buffered tail can be dropped
 * and an upload reported complete while up to a chunk short; with a deferred length whose size is an exact multiple
 * of the chunk size it hangs (tus-js-client issue 779).
 *
 * Every PATCH body ends on a frame boundary, so the server's offset after a whole PATCH is exactly what was sent.
 * After a cut the server keeps what arrived of the frame in flight, and its offset may fall inside a frame: a slice
 * may start anywhere, and goes on to a frame boundary. The source keeps every frame from the one holding the last
 * offset the server has on disk on (the synced offset a server that syncs after answering reports, else the
 * acknowledged one), so tus-js-client may ask again from any offset the server reports, even after a power cut there
 * took back what it had not synced, and it says `done`
 * with the slice that carries the end frame, never later (so the last PATCH declares the length).
 *
 * While a PATCH goes out, the source reads the next one's frames in the background (half a slice ahead; the encoder
 * behind it holds the rest), so on a slow link the line never idles while zstd works, and on a fast one compression
 * and upload overlap. The time a slice had to wait for frames is counted: the link meter takes it out of the link's
 * time.
 *
 * Slices start at one frame and double up to maxSlice (a slow start): the first PATCHes measure the link within
 * seconds, before much is compressed ahead at a level chosen blind (--compress auto).
 */
import type { Readable } from 'node:stream';
import { SnapferryError } from '../../core/errors.ts';
import { FRAME_FRAMING_MAX } from '../../core/wire/index.ts';

export interface FrameBoundarySource {
  /** The framed bytes, starting at wire offset `startOffset`. */
  stream: Readable;
  startOffset: number;
  /** Told of each buffer the server has acknowledged whole: nothing here reads it again (FrameEncoder.recycle). */
  recycle?: (buffer: Buffer) => void;
}

export class UploadSourceError extends SnapferryError {}

/**
 * Slices of acknowledged bytes kept while the server has not synced them: it syncs one request's frames while the
 * next crosses the line, so it is one behind; the second is slack for a sync slower than a request.
 */
const HELD_UNSYNCED = 2;

/** The next slice is read ahead up to this share of its size (see readAhead). */
const READ_AHEAD_SHARE = 0.5;

/** One PATCH body: views of the frames held (never copied), in order; `size` bytes in all. */
export interface FrameSlice {
  readonly pieces: readonly Buffer[];
  readonly size: number;
}

export class FramedUploadSource {
  /** Deferred length: tus learns it from the last PATCH. */
  readonly size = null;
  /** Wire offset of the first retained byte. */
  private retainedStart: number;
  private retained: Buffer[] = [];
  private retainedBytes = 0;
  /** Ends of frames (wire offsets) known so far and not yet passed. */
  private boundaries: number[] = [];
  private endOffset: number | null = null;
  private readonly iterator: AsyncIterator<Buffer>;
  private failure: unknown = null;
  private closed = false;
  private ended = false;
  private reading = false;
  private endTakenYet = false;
  /** Slices waiting for the background reader to bring more bytes. */
  private arrivals: (() => void)[] = [];
  private waitedNs = 0n;
  /** The largest slice for now: twice the last one, up to maxSlice; the first is one frame. */
  private sliceLimit = 1;
  /** The end of the furthest slice handed out: bytes of the server's past it came from elsewhere. */
  private handedTo: number;
  /** Where the server said the upload is on disk for certain (ACK_SYNCED_OFFSET_HEADER); null: it never said. */
  private syncedTo: number | null = null;

  constructor(
    private readonly framed: FrameBoundarySource,
    /** Largest PATCH body; a single frame larger than this still goes whole. */
    private readonly maxSlice: number,
  ) {
    this.retainedStart = framed.startOffset;
    this.handedTo = framed.startOffset;
    this.iterator = (framed.stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** Time slices spent waiting for frames so far: the upload had nothing to send. */
  get waitedMs(): number {
    return Number(this.waitedNs / 1_000_000n);
  }

  /**
   * Whether a slice has carried the end frame. An upload can succeed without it: tus-js-client takes a HEAD that
   * shows the upload whole for the end, and reads none of the source (the rest came from elsewhere meanwhile).
   */
  get endTaken(): boolean {
    return this.endTakenYet;
  }

  /**
   * Where this source's bytes end on the server at most: where it began, or the end of its furthest slice. The frames
   * past a later offset are another push's, cut where that push's compression cut them: this source's own frames
   * there lie elsewhere (client/upload/tus.ts checks that before it slices there).
   */
  get handedOutTo(): number {
    return this.handedTo;
  }

  /**
   * The server says the upload is on disk up to `offset`: the bytes after it are kept, though acknowledged, until it
   * says more (a power cut there would take them back). At most HELD_UNSYNCED slices' worth, so that a server that
   * stops saying it cannot grow the memory held.
   */
  synced(offset: number): void {
    if (Number.isSafeInteger(offset) && offset >= 0 && offset > (this.syncedTo ?? -1)) this.syncedTo = offset;
  }

  /** Called by the encoder for every frame it emits (before its bytes can be read). */
  frameEnded(wireEnd: number, isEnd: boolean): void {
    this.boundaries.push(wireEnd);
    if (isEnd) this.endOffset = wireEnd;
  }

  /** Bytes from `start` to the last frame boundary at or before `end` (at least one frame, if any remain). */
  async slice(start: number, end: number): Promise<{ value: FrameSlice | null; done: boolean }> {
    if (this.failure) throw this.failure;
    if (start < this.retainedStart) {
      throw new UploadSourceError('source_rewound', `the server asked for offset ${start}, before ${this.retainedStart} which it had already acknowledged as on disk`, {
        details: { start, retainedStart: this.retainedStart },
      });
    }
    this.dropBefore(this.keptFrom(start));
    this.readAhead();
    const want = Math.max(Math.min(end - start, this.sliceLimit), 1);
    let within = this.boundaryWithin(start, want);
    while (within.cut === null) {
      if (!(await this.readMore())) break;
      within = this.boundaryWithin(start, want);
    }
    let cut = within.cut;
    // Read on while the next frame may still fit, so a PATCH carries as much as allowed.
    while (cut !== null && cut !== this.endOffset && this.producedEnd() - start < want + (within.framesRead + 1) * FRAME_FRAMING_MAX) {
      if (!(await this.readMore())) break;
      within = this.boundaryWithin(start, want);
      cut = within.cut ?? cut;
    }
    if (cut === null) {
      if (this.endOffset !== null && start === this.endOffset) {
        this.endTakenYet = true;
        return { value: null, done: true };
      }
      throw new UploadSourceError('source_ended_early', `the framed stream ended at ${this.producedEnd()} without an end frame`);
    }
    this.sliceLimit = Math.min(2 * (cut - start), this.maxSlice);
    const value = { pieces: this.pieces(start, cut), size: cut - start };
    const done = this.endOffset !== null && cut === this.endOffset;
    if (done) this.endTakenYet = true;
    this.handedTo = Math.max(this.handedTo, cut);
    return { value, done };
  }

  close(): void {
    this.closed = true;
    this.framed.stream.destroy();
    this.wake();
  }

  private producedEnd(): number {
    return this.retainedStart + this.retainedBytes;
  }

  /**
   * The last frame boundary within `want` bytes of `start`, the frames' framing (header, seal) not counted: a PATCH
   * of 8 MiB takes two raw 4 MiB frames, which are 144 bytes over. Counted, a push of raw frames (incompressible
   * data, or `--compress auto` on a LAN) sent one frame a PATCH, twice the requests, each with its turnaround and the
   * server's syncs: serve 11.7-12.8 CPU s per GB against 9.0-10.8 (docs/performance.md, session 23). Also how many
   * frames read so far end after `start`: slice() allows their framing too when it asks whether one more frame fits.
   */
  private boundaryWithin(start: number, want: number): { cut: number | null; framesRead: number } {
    const readTo = this.producedEnd();
    let cut: number | null = null;
    let framesRead = 0;
    let over = false;
    for (const b of this.boundaries) {
      if (b <= start || b > readTo) continue;
      const allowed = want + ++framesRead * FRAME_FRAMING_MAX;
      if (!over && (b - start <= allowed || cut === null)) cut = b;
      if (b - start > allowed) over = true;
    }
    return { cut, framesRead };
  }

  /** Waits until the background reader brought more bytes (true) or the stream ended (false). */
  private async readMore(): Promise<boolean> {
    if (this.failure) throw this.failure;
    if (this.closed || this.ended) return false;
    const before = this.producedEnd();
    const started = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      this.arrivals.push(resolve);
      this.readAhead();
    });
    this.waitedNs += process.hrtime.bigint() - started;
    if (this.failure) throw this.failure;
    return this.producedEnd() > before;
  }

  /**
   * Reads in the background while less than the slice in flight and half the next are held, or while a slice waits
   * for bytes. Half, not a whole slice: the read-ahead fills only where frames come faster than the line takes them,
   * and then the encoder behind the source is full as well: it holds a chunk of frames unread and the frames of its
   * jobs in flight (core/wire/frame-encoder.ts), about 8 MiB or more at 4 MiB chunks, which the next slice takes at
   * once when the PATCH in flight is answered. A whole slice read ahead on top of those was 8 MiB more of a push's
   * peak RSS at the 16 MiB PATCHes of then (issue 22, docs/performance.md).
   */
  private readAhead(): void {
    if (this.reading || this.closed || this.ended || this.failure) return;
    this.reading = true;
    void (async () => {
      try {
        while (!this.closed && (this.retainedBytes < (1 + READ_AHEAD_SHARE) * this.sliceLimit || this.arrivals.length > 0)) {
          const next = await this.iterator.next();
          if (next.done) {
            this.ended = true;
            break;
          }
          this.retained.push(next.value);
          this.retainedBytes += next.value.length;
          this.wake();
        }
      } catch (err) {
        this.failure = err;
      } finally {
        this.reading = false;
        this.wake();
      }
    })();
  }

  /** Where the bytes kept begin when the next slice starts at `start`: the synced offset, if it is not too far back. */
  private keptFrom(start: number): number {
    if (this.syncedTo === null) return start;
    return Math.min(start, Math.max(this.syncedTo, start - HELD_UNSYNCED * this.maxSlice));
  }

  private wake(): void {
    for (const resolve of this.arrivals.splice(0)) resolve();
  }

  /**
   * Forgets the frames that end at or before `offset`: the server holds them. The frame `offset` falls in stays
   * whole, although the server holds part of it (what a cut request brought): should that part fail to verify with
   * the rest, the server drops it and asks for the whole frame again.
   */
  private dropBefore(offset: number): void {
    const frameStart = this.boundaries.reduce((best, b) => (b <= offset && b > best ? b : best), this.retainedStart);
    let drop = Math.min(frameStart - this.retainedStart, this.retainedBytes);
    while (drop > 0 && this.retained.length > 0) {
      const head = this.retained[0]!;
      if (head.length <= drop) {
        this.retained.shift();
        this.framed.recycle?.(head);
        drop -= head.length;
        this.retainedStart += head.length;
        this.retainedBytes -= head.length;
      } else {
        this.retained[0] = head.subarray(drop);
        this.retainedStart += drop;
        this.retainedBytes -= drop;
        drop = 0;
      }
    }
    this.boundaries = this.boundaries.filter((b) => b > this.retainedStart);
  }

  /** Views of the held bytes from `from` to `to`: the frames stay as they came, so a PATCH copies nothing. */
  private pieces(from: number, to: number): Buffer[] {
    const out: Buffer[] = [];
    let pos = this.retainedStart;
    for (const buf of this.retained) {
      const bufEnd = pos + buf.length;
      if (bufEnd > from && pos < to) out.push(buf.subarray(Math.max(from, pos) - pos, Math.min(to, bufEnd) - pos));
      pos = bufEnd;
      if (pos >= to) break;
    }
    return out;
  }
}
