/**
 * The raw send stream of an upload, for the receive that runs beside it (issue 9), as its frames verify. It never
 * goes past the last verified frame, waits while the upload is cut or the client is away, and ends only after the end
 * frame verified: a stream whose end frame never verifies never ends, so its receive never looks complete.
 *
 * Two ways in, one order out. A receive that keeps up takes each data frame's bytes as the spool store has just
 * verified and written them (offer()): nothing is read back, decompressed or hashed a second time. A receive that
 * is behind (it started again after a restart or a rewind, or btrfs receive was slower than the link) reads the
 * spool from where it stands, through a verifying parser that carries on the chain, so bytes damaged on disk since
 * they verified fail with a FrameError naming the frame, before btrfs receive sees them. The end frame is always read
 * from the spool, and so checked against the chain of everything handed on.
 */
import fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import { FrameParser, type VerifiedFrame } from '../core/wire/index.ts';
import { CHAIN_ZERO } from '../core/wire/chain.ts';

/** Spool bytes read at a time when catching up: large enough to keep btrfs receive busy, small enough to stay flat. */
const READ_BYTES = 1024 * 1024;
/** Decoded bytes held for btrfs receive before a verified frame is left to be read back from the spool instead. */
const HELD_BYTES = 8 * 1024 * 1024;
/**
 * The most one push hands on. A zstd frame decodes into one buffer of the chunk size (4 MiB), and every stage after
 * this one (the send-stream check, the renamer, the pipe to btrfs receive) holds a whole chunk in its writable and
 * another in its readable buffer whatever its high-water mark: handed on whole, a frame's buffer sat in each of
 * them, five frames (20 MiB) on their way to btrfs receive besides the 8 MiB held here (docs/performance.md, issue 22).
 * In pieces, the stages hold a piece or two each. 1 MiB, not less: at 256 KiB the pushes through the stages cost
 * 0.1-0.2 CPU s/GB more (test/bench/live-source-cpu.ts), at 1 MiB no more than the noise. Raw frames come as the
 * request's pieces (64 KiB), already under it.
 */
export const MAX_PIECE = 1024 * 1024;

export class LiveStreamSource extends Readable {
  private handle: fs.FileHandle | null = null;
  /** Verifies what is read from the spool; rebuilt from the position below after frames came from memory. */
  private parser: FrameParser | null = null;
  /** Where the frames handed on end: wire offset, frames, raw offset and chain after them. */
  private wirePos = 0;
  private frames = 0;
  private rawPos = 0;
  private chain: Buffer = CHAIN_ZERO;
  /** Spool bytes read and given to the parser (ahead of wirePos by a frame's part at most). */
  private diskPos = 0;
  /** Wire offset up to which the spool holds verified frames. */
  private verifiedEnd = 0;
  private endStored = false;
  private waiting = false;
  private reading = false;
  private readBack = 0;
  /** Whether the last frame read back fitted under the high-water mark. */
  private room = true;
  private again = false;
  /** Callers of roomFor() waiting for the receive to take what it holds. */
  private roomWaiters = new Set<() => void>();

  constructor(
    private readonly file: string,
    private readonly chunkSize: number,
    heldBytes = HELD_BYTES,
  ) {
    super({ highWaterMark: heldBytes });
  }

  /** Bytes of the framed stream taken so far (from memory or the spool). */
  get wireRead(): number {
    return this.wirePos;
  }

  /** Whether the spool holds the verified end frame: this source will end, once it has read that far. */
  get complete(): boolean {
    return this.endStored;
  }

  /** Bytes read back from the spool (a receive that keeps up reads only the end frame). */
  get spoolBytesRead(): number {
    return this.readBack;
  }

  /** The spool now holds verified frames up to `wireEnd`; `complete` once the end frame is among them. */
  advance(wireEnd: number, complete: boolean): void {
    if (wireEnd > this.verifiedEnd) this.verifiedEnd = wireEnd;
    if (complete) this.endStored = true;
    if (this.waiting) {
      this.waiting = false;
      this.pump();
    }
  }

  /**
   * Resolves once `frame` can be offered and handed on from memory, or could not be anyway (the source is behind,
   * reading the spool; it is gone), or after `ms`. The store waits on it, so a receive slower than the upload paces
   * the upload instead of falling behind: a frame that misses memory is read back, decoded and hashed a second time,
   * and that work then slows everything on the server. A receive that stalls longer than `ms` does fall behind, and
   * the upload goes on at its own pace until the receive has caught up.
   */
  roomFor(frame: VerifiedFrame, ms: number): Promise<void> {
    if (!this.takesFromMemory(frame) || this.hasRoom()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.roomWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.roomWaiters.add(done);
    });
  }

  /**
   * A data frame the store has just verified and written: handed on as it is when nothing comes before it (true: its
   * decoded bytes are taken, and btrfs receive's pipe says when it is done with them); else read back later (false).
   */
  offer(frame: VerifiedFrame): boolean {
    if (this.takesFromMemory(frame) && this.hasRoom()) {
      this.wirePos = this.diskPos = frame.wireEnd;
      this.frames = frame.index + 1;
      this.rawPos = frame.rawOffset + frame.rawLength;
      this.chain = frame.chain;
      this.parser = null;
      if (frame.wireEnd > this.verifiedEnd) this.verifiedEnd = frame.wireEnd;
      this.pushPieces(frame.raw as Buffer[]);
      return true;
    }
    this.advance(frame.wireEnd, false);
    return false;
  }

  /** Whether `frame` is the next one and nothing is being read back before it. */
  private takesFromMemory(frame: VerifiedFrame): boolean {
    const next = frame.kind === 'data' && frame.raw !== undefined && frame.wireStart === this.wirePos;
    return next && !this.reading && this.diskPos === this.wirePos && !this.destroyed;
  }

  /** Whether it holds less than its high-water mark of bytes btrfs receive has not taken yet. */
  private hasRoom(): boolean {
    return this.readableLength < this.readableHighWaterMark;
  }

  override _read(): void {
    this.wakeRoomWaiters();
    this.pump();
  }

  private wakeRoomWaiters(): void {
    for (const done of [...this.roomWaiters]) done();
  }

  private pump(): void {
    if (this.destroyed) return;
    // A wake-up that comes while a read is finishing must not be lost: that read runs once more.
    if (this.reading) {
      this.again = true;
      return;
    }
    this.again = false;
    // Nothing to read yet: said at once, so a frame offered next is taken from memory, not left for a read to end.
    if (this.diskPos >= this.verifiedEnd && !this.endStored) {
      this.waiting = true;
      return;
    }
    this.reading = true;
    void this.readSome()
      .catch((err: unknown) => this.destroy(err as Error))
      .finally(() => {
        this.reading = false;
        if (this.again) this.pump();
      });
  }

  private async readSome(): Promise<void> {
    for (;;) {
      if (this.diskPos >= this.verifiedEnd) {
        if (!this.endStored) {
          this.waiting = true;
          return;
        }
        // The end frame has been read and verified (or finish() says what is missing).
        this.verifier().finish();
        this.push(null);
        return;
      }
      this.handle ??= await fs.open(this.file, 'r');
      const length = Math.min(READ_BYTES, this.verifiedEnd - this.diskPos);
      const buffer = Buffer.allocUnsafe(length);
      const { bytesRead } = await this.handle.read(buffer, 0, length, this.diskPos);
      if (bytesRead === 0) throw new Error(`the spool ends at ${this.diskPos}, before the verified end ${this.verifiedEnd}`);
      const parser = this.verifier();
      this.diskPos += bytesRead;
      this.readBack += bytesRead;
      this.room = true;
      parser.push(buffer.subarray(0, bytesRead));
      if (this.destroyed || !this.room) return;
    }
  }

  private verifier(): FrameParser {
    this.parser ??= new FrameParser({
      keepRaw: true,
      state: { chunkSize: this.chunkSize, framesVerified: this.frames, wireOffsetVerified: this.wirePos, rawOffset: this.rawPos, chain: this.chain, ended: false },
      // Each frame goes on as soon as it verified: frames before a damaged one in the same read are not held back.
      onFrame: (frame) => this.takeVerified(frame),
    });
    return this.parser;
  }

  private takeVerified(frame: VerifiedFrame): void {
    this.wirePos = frame.wireEnd;
    if (frame.kind !== 'data') return;
    this.frames = frame.index + 1;
    this.rawPos = frame.rawOffset + frame.rawLength;
    this.chain = frame.chain;
    this.room = this.pushPieces(frame.raw ?? []);
  }

  /** Hands `pieces` on in views of at most MAX_PIECE bytes; false once this source holds its high-water mark. */
  private pushPieces(pieces: readonly Buffer[]): boolean {
    let room = true;
    for (const piece of pieces) {
      for (let at = 0; at < piece.length; at += MAX_PIECE) room = this.push(piece.subarray(at, at + MAX_PIECE));
    }
    return room;
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.wakeRoomWaiters();
    const handle = this.handle;
    this.handle = null;
    if (handle === null) return callback(err);
    handle.close().then(
      () => callback(err),
      () => callback(err),
    );
  }
}
