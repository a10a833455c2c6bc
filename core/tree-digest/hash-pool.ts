/**
 * File content is read and hashed on worker threads, so digesting uses every core and keeps several reads in flight
 * (SHA-256 runs at ~1-2 GB/s a core; one thread would be slower than an SSD). A job is a batch of file ranges (many
 * small files, or one range of a large file); jobs go to the least busy worker and come back in any order.
 * Modelled on core/wire/compression-pool.ts. Workers are unref'd while idle.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { TreeChangedError, TreeReadError } from './errors.ts';
import type { HashItem, HashRequest, HashResponse } from './hash-messages.ts';

const WORKER = new URL('./hash-worker.mjs', import.meta.url);

export function defaultHashPoolSize(): number {
  return Math.max(1, Math.min(os.availableParallelism(), 16));
}

interface Slot {
  worker: Worker;
  busy: number;
}

interface Pending {
  resolve: (digests: Buffer[]) => void;
  reject: (err: Error) => void;
  slot: Slot;
}

export class HashPool {
  readonly size: number;
  readonly #slots: Slot[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #failure: Error | null = null;

  constructor(size: number = defaultHashPoolSize()) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`pool size must be >= 1, got ${size}`);
    this.size = size;
  }

  /** The piece digests of each item, in the items' order. */
  hash(items: HashItem[]): Promise<Buffer[]> {
    if (this.#failure) return Promise.reject(this.#failure);
    const slot = this.#leastBusy();
    const id = this.#nextId++;
    return new Promise<Buffer[]>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, slot });
      if (slot.busy++ === 0) slot.worker.ref();
      const req: HashRequest = { id, items };
      slot.worker.postMessage(req);
    });
  }

  async close(): Promise<void> {
    this.#fail(new Error('the hash pool was closed'));
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
    // Plain JavaScript, without the main thread's loaders (tsx would cost each worker a second and 30 MB).
    const worker = new Worker(WORKER, { execArgv: [] });
    const slot: Slot = { worker, busy: 0 };
    worker.unref();
    worker.on('message', (res: HashResponse) => this.#settle(res));
    worker.on('error', (err) => this.#fail(err));
    worker.on('exit', (code) => {
      if (this.#slots.includes(slot)) this.#fail(new Error(`a hashing worker exited with code ${code}`));
    });
    this.#slots.push(slot);
    return slot;
  }

  #settle(res: HashResponse): void {
    const job = this.#pending.get(res.id);
    if (!job) return;
    this.#pending.delete(res.id);
    if (--job.slot.busy === 0) job.slot.worker.unref();
    if (res.error !== undefined) {
      job.reject(res.changed ? new TreeChangedError(res.error) : new TreeReadError(`cannot read a file: ${res.error}`, { details: { code: res.errno } }));
      return;
    }
    job.resolve(res.digests.map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength)));
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const [id, job] of this.#pending) {
      this.#pending.delete(id);
      job.reject(err);
    }
  }
}
