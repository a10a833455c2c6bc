/**
 * Frames compress on worker threads, so a push on a fast link uses every core (zstd at level 3 makes ~300 MB/s on
 * one core here, below what `btrfs send` and a LAN can do). Each job hashes and compresses one raw chunk; jobs go to
 * the least busy worker and come back in any order (the encoder puts them back in order).
 *
 * Workers are unref'd while idle: an open pool never keeps a finished process alive.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { FrameCodec } from './codec.ts';
import { validateZstdLevel } from './codec.ts';
import type { CompressRequest, CompressResponse } from './compression-messages.ts';
import { owned, transferListOf } from './transferable.mjs';

export interface CompressedParts {
  codec: FrameCodec;
  payload: Buffer;
  rawHash: Buffer;
  /** Wall time the compression took on its worker (hashing not included). */
  compressNs: number;
  level: number;
  /** The raw chunk's memory, free to fill with a later chunk (RawChunker.recycle), or null when the payload is it. */
  spare: Buffer | null;
}

const WORKER = new URL('./compression-worker.mjs', import.meta.url);

export function defaultPoolSize(): number {
  return Math.max(1, Math.min(os.availableParallelism(), 8));
}

export class CompressionPoolClosed extends Error {
  constructor() {
    super('the compression pool was closed');
    this.name = 'CompressionPoolClosed';
  }
}

interface Pending {
  resolve: (parts: CompressedParts) => void;
  reject: (err: Error) => void;
  level: number;
}

interface Slot {
  worker: Worker;
  busy: number;
}

export class CompressionPool {
  readonly size: number;
  readonly #slots: Slot[] = [];
  readonly #pending = new Map<number, Pending & { slot: Slot }>();
  #nextId = 0;
  #failure: Error | null = null;

  constructor(size: number = defaultPoolSize()) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`pool size must be >= 1, got ${size}`);
    this.size = size;
  }

  /** Hashes and compresses one chunk at `level` (0: raw). The chunk's memory may be moved to the worker. */
  run(raw: Buffer, level: number): Promise<CompressedParts> {
    validateZstdLevel(level);
    if (this.#failure) return Promise.reject(this.#failure);
    const slot = this.#leastBusy();
    const id = this.#nextId++;
    const data = owned(raw);
    return new Promise<CompressedParts>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, level, slot });
      if (slot.busy++ === 0) slot.worker.ref();
      const req: CompressRequest = { id, raw: data, level };
      slot.worker.postMessage(req, transferListOf(data));
    });
  }

  /** Stops the workers; jobs still running reject with CompressionPoolClosed. */
  async close(): Promise<void> {
    this.#fail(new CompressionPoolClosed());
    await Promise.all(this.#slots.splice(0).map((s) => s.worker.terminate()));
  }

  #leastBusy(): Slot {
    if (this.#slots.length < this.size) {
      const idle = this.#slots.find((s) => s.busy === 0);
      if (idle) return idle;
      return this.#spawn();
    }
    return this.#slots.reduce((a, b) => (b.busy < a.busy ? b : a));
  }

  #spawn(): Slot {
    // Plain JavaScript, without the main thread's loaders: a worker that loads tsx costs a second and 30 MB.
    const worker = new Worker(WORKER, { execArgv: [] });
    const slot: Slot = { worker, busy: 0 };
    worker.unref();
    worker.on('message', (res: CompressResponse) => this.#settle(res));
    worker.on('error', (err) => this.#fail(err));
    worker.on('exit', (code) => {
      if (this.#slots.includes(slot)) this.#fail(new Error(`a compression worker exited with code ${code}`));
    });
    this.#slots.push(slot);
    return slot;
  }

  #settle(res: CompressResponse): void {
    const job = this.#pending.get(res.id);
    if (!job) return;
    this.#pending.delete(res.id);
    if (--job.slot.busy === 0) job.slot.worker.unref();
    if (res.error !== undefined) {
      job.reject(new Error(`compression failed: ${res.error}`));
      return;
    }
    job.resolve({
      codec: res.codec,
      payload: Buffer.from(res.payload.buffer, res.payload.byteOffset, res.payload.byteLength),
      rawHash: Buffer.from(res.rawHash.buffer, res.rawHash.byteOffset, res.rawHash.byteLength),
      compressNs: res.compressNs,
      level: job.level,
      spare: res.spare ? Buffer.from(res.spare.buffer, res.spare.byteOffset, res.spare.byteLength) : null,
    });
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const [id, job] of this.#pending) {
      this.#pending.delete(id);
      job.reject(err);
    }
  }
}
