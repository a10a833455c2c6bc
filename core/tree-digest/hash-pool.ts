/**
 * File content is read and hashed on worker threads, so digesting uses every core and keeps several reads in flight
 * (Node's SHA-256 runs at about 0.65-1.1 GB/s a core here; one thread would be slower than an SSD). A job is a batch
 * of file ranges (many small files, or one range of a large file); core/worker-pool.ts runs the workers.
 */
import os from 'node:os';
import { TreeChangedError, TreeReadError } from './errors.ts';
import type { HashItem, HashRequest, HashResponse } from './hash-messages.ts';
import { WorkerPool } from '../worker-pool.ts';

const WORKER = new URL('./hash-worker.mjs', import.meta.url);

export function defaultHashPoolSize(): number {
  return Math.max(1, Math.min(os.availableParallelism(), 16));
}

export class HashPool {
  readonly #pool: WorkerPool<HashRequest, HashResponse, Buffer[]>;

  constructor(size: number = defaultHashPoolSize()) {
    this.#pool = new WorkerPool({ url: WORKER, size, name: 'a hashing worker', settle: digestsOf });
  }

  get size(): number {
    return this.#pool.size;
  }

  /** The piece digests of each item, in the items' order. */
  hash(items: HashItem[]): Promise<Buffer[]> {
    return this.#pool.run({ items }, undefined);
  }

  close(): Promise<void> {
    return this.#pool.close(new Error('the hash pool was closed'));
  }
}

function digestsOf(res: HashResponse): Buffer[] {
  if (res.error !== undefined) {
    throw res.changed ? new TreeChangedError(res.error) : new TreeReadError(`cannot read a file: ${res.error}`, { details: { code: res.errno } });
  }
  return res.digests.map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength));
}
