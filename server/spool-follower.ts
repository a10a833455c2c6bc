/**
 * Reads an upload's spool from its first byte as its frames verify, for the receive that runs beside the upload
 * (issue 9). It never reads past the last verified frame (the spool store appends a frame's bytes only once it
 * verified, and says so through advance()), waits while the upload is cut or the client is away, and ends only after
 * the end frame: a stream whose end frame never verifies never ends, so its receive never looks complete.
 *
 * Reading the spool rather than taking the frames from the request keeps one path for every case: a receive that
 * starts again after a restart, a rewind or a failure reads the same file from the start, and catches up at disk
 * speed (the page cache, mostly) before it waits for the upload again.
 */
import fs from 'node:fs/promises';
import { Readable } from 'node:stream';

/** Bytes read per push: large enough to keep btrfs receive busy, small enough to keep memory flat. */
const READ_BYTES = 1024 * 1024;

export class SpoolFollower extends Readable {
  private handle: fs.FileHandle | null = null;
  private position = 0;
  /** Wire offset up to which the spool holds verified frames. */
  private verifiedEnd = 0;
  private complete = false;
  private waiting = false;
  private reading = false;
  private again = false;

  constructor(private readonly file: string) {
    super({ highWaterMark: READ_BYTES });
  }

  /** The spool now holds verified frames up to `wireEnd`; `complete` once the end frame is among them. */
  advance(wireEnd: number, complete: boolean): void {
    if (wireEnd > this.verifiedEnd) this.verifiedEnd = wireEnd;
    if (complete) this.complete = true;
    if (this.waiting) {
      this.waiting = false;
      this.pump();
    }
  }

  /** Bytes of the spool handed on so far. */
  get wireRead(): number {
    return this.position;
  }

  override _read(): void {
    this.pump();
  }

  private pump(): void {
    if (this.destroyed) return;
    // A wake-up that comes while a read is finishing must not be lost: that read runs once more.
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    this.again = false;
    void this.readSome()
      .catch((err: unknown) => this.destroy(err as Error))
      .finally(() => {
        this.reading = false;
        if (this.again) this.pump();
      });
  }

  private async readSome(): Promise<void> {
    this.handle ??= await fs.open(this.file, 'r');
    for (;;) {
      if (this.position >= this.verifiedEnd) {
        if (this.complete) this.push(null);
        else this.waiting = true;
        return;
      }
      const length = Math.min(READ_BYTES, this.verifiedEnd - this.position);
      const buffer = Buffer.allocUnsafe(length);
      const { bytesRead } = await this.handle.read(buffer, 0, length, this.position);
      if (bytesRead === 0) {
        // The index vouched for bytes the spool no longer has (a rewind cut it back under this reader).
        throw new Error(`the spool ends at ${this.position}, before the verified end ${this.verifiedEnd}`);
      }
      this.position += bytesRead;
      if (this.destroyed || !this.push(bytesRead === length ? buffer : buffer.subarray(0, bytesRead))) return;
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.handle;
    this.handle = null;
    if (handle === null) return callback(err);
    handle.close().then(
      () => callback(err),
      () => callback(err),
    );
  }
}
