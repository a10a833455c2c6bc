/**
 * The part of a frame still arriving, written to the spool while its request goes on (server/spool/append.ts): bytes
 * past the last verified frame wait in memory at most TAIL_WRITE_MS, then go to the spool file after the frames. A
 * request that ends keeps them anyway (append.ts keepTail), but a server killed mid-request (SIGKILL, the OOM killer,
 * a crash) never ends it: the part it held in memory died with it, repair found no tail, and the client sent the
 * whole frame again, up to 16 MiB, though it had crossed the line once (test/e2e/silent-line-kills.test.ts). Written,
 * it outlives the process in the page cache (not a power cut: it is not synced, and needs not be), repair keeps it
 * as a cut's tail, and the client sends only the rest.
 *
 * Written only while the append waits for the request's next bytes (`waiting`), never while it cuts and writes frames:
 * the tail's bytes are views of arrival memory that a frame's write says done (append.ts frameDone), after which a
 * new arrival may be copied over them. Never on a line that brings a frame within the delay (a LAN): its frames are
 * written whole as they verify, one write each, as before.
 */
import type fs from 'node:fs/promises';
import { takeFront } from './frame-cutter.ts';

/**
 * How long bytes past the last verified frame stay in memory at most while the request waits for more: what a server
 * killed mid-request loses of the line's bytes (a quarter of a second; at 2 Mbit/s, 60 kB).
 */
export const TAIL_WRITE_MS = 250;
const MAX_WRITEV_PARTS = 256;

/** The bytes past the last verified frame, and where they begin (its end); null when none may be written now. */
export type ArrivedTail = () => { at: number; bytes: readonly Buffer[]; max: number } | null;

export class TailWrites {
  /** The spool holds the stream's bytes up to here: the verified frames, then the tail written so far. */
  #onDisk: number;
  #timer: NodeJS.Timeout | null = null;
  #writing: Promise<void> | null = null;
  /** The append waits for the request's next bytes: nothing else touches the spool or the tail's memory. */
  #idle = false;
  #closed = false;

  /** `onDisk`: the spool's size when the request began (its verified frames and the tail a cut left). */
  constructor(
    private readonly spool: fs.FileHandle,
    onDisk: number,
    private readonly tail: ArrivedTail,
  ) {
    this.#onDisk = onDisk;
  }

  /** Where the stream's bytes on disk end: what a frame's write and the request's last tail need not write again. */
  get onDisk(): number {
    return this.#onDisk;
  }

  /** The append waits for the request's next bytes, which have reached `arrivedTo` on the wire so far. */
  waiting(arrivedTo: number): void {
    this.#idle = true;
    if (this.#timer === null && !this.#closed && arrivedTo > this.#onDisk) {
      this.#timer = setTimeout(() => this.#due(), TAIL_WRITE_MS);
      this.#timer.unref();
    }
  }

  /**
   * The next bytes came: the tail write under way, if one is (it reads their memory), which they wait for before they
   * are cut into frames. Not a promise each time: a slow line brings a frame in thousands of reads.
   */
  busy(): Promise<void> | null {
    this.#idle = false;
    return this.#writing;
  }

  /** The spool holds the stream's bytes up to `end` (a frame written): the tail's wait starts again. */
  wrote(end: number): void {
    if (end > this.#onDisk) this.#onDisk = end;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** The request is over: no more writes here, and the one under way is done. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#idle = false;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#writing !== null) await this.#writing;
  }

  #due(): void {
    this.#timer = null;
    if (!this.#idle || this.#closed || this.#writing !== null) return;
    const tail = this.tail();
    if (tail === null) return;
    this.#writing = this.#write(tail.at, tail.bytes, tail.max).finally(() => (this.#writing = null));
  }

  /** Writes what the spool does not hold yet of `bytes` (which begin at `at`), no further than `max`. */
  async #write(at: number, bytes: readonly Buffer[], max: number): Promise<void> {
    const length = Math.min(bytes.reduce((n, b) => n + b.length, 0), max - at);
    const skip = Math.max(0, this.#onDisk - at);
    if (length <= skip) return;
    const rest = [...bytes];
    takeFront(rest, skip);
    const parts = takeFront(rest, length - skip);
    // Worth a try, never a failure (a full disk): the request's own writes meet it, and a short write is a prefix.
    const { bytesWritten } = await this.spool
      .writev(parts.length > MAX_WRITEV_PARTS ? [Buffer.concat(parts)] : parts, at + skip)
      .catch(() => ({ bytesWritten: 0 }));
    if (at + skip + bytesWritten > this.#onDisk) this.#onDisk = at + skip + bytesWritten;
  }
}
