/**
 * The read end of a pipe as a Readable whose chunks are buffers of a fixed size, each filled in place by the pipe's
 * reads (net.Socket `onread`): no buffer per read, no copy. Node's own stream of a child's stdout allocates a 64 KiB
 * buffer for every read (1 GB of short-lived buffers per GB, the GC's main work in a push) and the frame encoder
 * then copies those into its 4 MiB chunks; read here into chunk-sized buffers, a full buffer is the chunk itself
 * (issue 22, docs/performance.md).
 *
 * A chunk is pushed when full, the short rest at EOF. Each pushed buffer belongs to its reader from then on; memory
 * comes from `allocate` (a consumer's spare chunk, which it must no longer use) or is allocated anew.
 */
import net from 'node:net';
import { Readable } from 'node:stream';
import { AS_IS, type ChunkStep } from '../wire/chunk-step.ts';

export interface FilledReadsOptions {
  /** Bytes per chunk pushed (the last may be shorter). */
  size: number;
  /**
   * Bytes of the first chunk pushed, when not `size`: a consumer that changes the stream's first command (push's
   * renaming, core/wire/stream-naming.ts) makes its first read that much shorter or longer, so that every later
   * read is still one whole chunk of what it passes on.
   */
  firstSize?: number;
  /** A buffer of exactly `size` bytes nobody uses any more, or null to allocate one. */
  allocate?: () => Buffer | null;
  /** What to do with each chunk as it is read, before it is pushed (ReadStep). */
  step?: ReadStep;
}

/**
 * Work on each chunk done inside the read that filled it (push's send-stream check and renaming): a stream stage of
 * its own between the reads and their consumer holds a chunk or two of its own whenever the consumer is behind, 8 MiB
 * each at 4 MiB chunks (issue 22, docs/performance.md). `end` runs once the writer has succeeded.
 */
export type ReadStep = ChunkStep;

export class FilledReads extends Readable {
  readonly #size: number;
  readonly #allocate: () => Buffer | null;
  readonly #step: ReadStep;
  readonly #socket: net.Socket;
  #current: Buffer;
  #currentSize: number;
  #fill = 0;

  /**
   * Takes ownership of `fd` (closed when the stream is destroyed or the pipe ends). `ended` decides how the stream
   * ends once the pipe reached EOF: it ends when `ended` resolves and is destroyed with its error when it rejects (a
   * writer's exit status, so that 'end' means "the writer succeeded", not merely "the pipe closed").
   */
  constructor(fd: number, ended: Promise<void>, options: FilledReadsOptions) {
    // Chunks are large and the consumer keeps each one it is given: one waiting chunk is enough read-ahead.
    super({ highWaterMark: 1 });
    this.#size = options.size;
    this.#allocate = options.allocate ?? (() => null);
    this.#step = options.step ?? AS_IS;
    this.#currentSize = options.firstSize ?? options.size;
    if (!Number.isSafeInteger(this.#currentSize) || this.#currentSize < 1) throw new RangeError(`firstSize must be >= 1, got ${this.#currentSize}`);
    this.#current = this.#currentSize === this.#size ? this.#fresh() : Buffer.allocUnsafe(this.#currentSize);
    // `onread` is honoured by the constructor as by connect() (node's net.js), but typed only for connect().
    this.#socket = new net.Socket({
      fd,
      readable: true,
      writable: false,
      onread: {
        // Called before each read: the read lands in the rest of the chunk being filled.
        buffer: () => this.#current.subarray(this.#fill),
        // Returning false stops reading (readStop) until _read resumes the socket.
        callback: (nread: number) => this.#filled(nread),
      },
    } as net.SocketConstructorOpts);
    this.#socket.on('error', (err) => this.destroy(err));
    this.#socket.on('end', () => {
      if (this.#fill > 0 && !this.#pass(() => this.#step.take(this.#current.subarray(0, this.#fill))).ok) return;
      ended.then(
        () => {
          if (this.#pass(() => this.#step.end()).ok) this.push(null);
        },
        (err: unknown) => this.destroy(err as Error),
      );
    });
    ended.catch((err: unknown) => this.destroy(err as Error));
  }

  #fresh(): Buffer {
    const spare = this.#allocate();
    return spare !== null && spare.length === this.#size ? spare : Buffer.allocUnsafe(this.#size);
  }

  #filled(nread: number): boolean {
    this.#fill += nread;
    if (this.#fill < this.#currentSize) return true;
    const full = this.#current;
    this.#currentSize = this.#size;
    // The next read's memory is set before the chunk leaves: its reader may hand it to another thread at once.
    this.#current = this.#fresh();
    this.#fill = 0;
    const passed = this.#pass(() => this.#step.take(full));
    return passed.ok && passed.more;
  }

  /** Pushes what the step makes of a chunk; a step that throws destroys the stream with its error. */
  #pass(step: () => readonly Buffer[]): { ok: boolean; more: boolean } {
    let out: readonly Buffer[];
    try {
      out = step();
    } catch (err) {
      this.destroy(err as Error);
      return { ok: false, more: false };
    }
    let more = true;
    for (const chunk of out) more = this.push(chunk);
    return { ok: true, more };
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy();
    callback(err);
  }
}
