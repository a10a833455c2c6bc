/**
 * Frames compress on worker threads, so a push on a fast link uses every core (zstd at level 3 makes ~300 MB/s on
 * one core here, below what `btrfs send` and a LAN can do). Each job hashes and compresses one raw chunk; jobs go to
 * the least busy worker and come back in any order (the encoder puts them back in order); core/worker-pool.ts runs
 * the workers.
 */
import os from 'node:os';
import type { FrameCodec } from './codec.ts';
import { NO_COMPRESSION, validateZstdLevel } from './codec.ts';
import type { CompressRequest, CompressResponse } from './compression-messages.ts';
import { sha256 } from './chain.ts';
import { owned, transferListOf } from './transferable.mjs';
import { SHELF_BYTES } from './payload-shelf.mjs';
import { WorkerPool } from '../worker-pool.ts';

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

/**
 * Below this level one worker compresses faster than any link it will meet needs (level 3: about 300 MB/s raw on one
 * core here, hashing included ~250; gigabit carries 117), so the jobs stay on one worker and a second is not started:
 * each worker costs 13-25 MB of a push's peak RSS (its V8 isolate, its zstd context and compressBound scratch) for
 * nothing where --compress auto settles at level 1 or raw, as on a LAN (issue 22, docs/performance.md). From this
 * level on, as auto climbs on a slow line, every worker is used.
 */
export const SPREAD_FROM_LEVEL = 4;
/**
 * After this many jobs in a row below SPREAD_FROM_LEVEL (128 MiB raw at 4 MiB chunks) the workers beyond the first
 * stop: auto climbs past level 3 while it learns the link and often comes back down, and a worker kept idle from then
 * on held its memory for the rest of the push. Many jobs, so a level flapping around 4 does not restart a worker each time.
 */
export const RETIRE_AFTER_JOBS = 32;

export class CompressionPool {
  readonly #pool: WorkerPool<CompressRequest, CompressResponse, CompressedParts, number>;
  #spread = 1;
  #jobsBelowSpread = 0;
  #rawJobsInRow = 0;
  /** zstd payload memory handed out, by its memory: where the payload ends in it (its last byte recycled frees it). */
  readonly #lent = new WeakMap<ArrayBuffer, number>();
  /** Payload memory recycled since the last job, sent back to a worker with the next one (payload-shelf.mjs). */
  #returned: ArrayBuffer[] = [];
  #returnedBytes = 0;
  #freshPayloads = 0;
  #payloads = 0;

  constructor(size: number = defaultPoolSize()) {
    this.#pool = new WorkerPool({ url: WORKER, size, name: 'a compression worker', settle: (res, level) => this.#partsOf(res, level) });
  }

  /**
   * Takes back a piece of a zstd payload from this pool once nothing reads it any more (the server acknowledged it):
   * once its last byte is back, its memory goes to a worker with the next job and a later payload is copied into it,
   * instead of each payload being new memory that only a mark-compact frees (issue 22). Anything else is ignored.
   */
  recycle(piece: Uint8Array): void {
    const memory = piece.buffer as ArrayBuffer;
    const end = this.#lent.get(memory);
    if (end === undefined || piece.byteOffset + piece.byteLength !== end) return;
    this.#lent.delete(memory);
    // With no worker running (raw frames for a while), no job would take it back: held here it would only be held.
    if (this.#pool.started === 0 || this.#returnedBytes + memory.byteLength > SHELF_BYTES) return;
    this.#returned.push(memory);
    this.#returnedBytes += memory.byteLength;
  }

  /** Bytes of payload memory held here for the next job. */
  get heldPayloadBytes(): number {
    return this.#returnedBytes;
  }

  /** zstd payloads made so far, and how many of them in new memory (for tests and the bench). */
  get payloadCounts(): { payloads: number; fresh: number } {
    return { payloads: this.#payloads, fresh: this.#freshPayloads };
  }

  /** Workers the pool may start: what a level chooser can count on at the levels that use them all. */
  get size(): number {
    return this.#pool.size;
  }

  /** Workers the last job's level spreads over: a caller keeps about this many jobs in flight (FrameEncoder). */
  get inUse(): number {
    return this.#spread;
  }

  /** Worker threads running now: one until a job's level spreads to more. */
  get workersStarted(): number {
    return this.#pool.started;
  }

  /**
   * Hashes and compresses one chunk at `level` (0: raw). The chunk's memory may be moved to the worker. A raw chunk
   * is only hashed, here: SHA-256 costs this thread about 2 ms per 4 MiB chunk (0.56 s/GB with the CPU's SHA
   * instructions), less than the round trip to a worker, and a push that sends raw frames (`--compress none`, or auto
   * on a LAN) then needs no worker at all: each is a V8 isolate, a zstd context and its scratch, 13-25 MB of the
   * push's RSS (issue 22). After RETIRE_AFTER_JOBS raw chunks in a row, the workers stop.
   */
  run(raw: Buffer, level: number): Promise<CompressedParts> {
    validateZstdLevel(level);
    if (level === NO_COMPRESSION) {
      if (++this.#rawJobsInRow >= RETIRE_AFTER_JOBS && this.#pool.started > 0) {
        this.#pool.retireBeyond(0);
        this.#takeReturned();
      }
      return Promise.resolve({ codec: 'raw', payload: raw, rawHash: sha256(raw), compressNs: 0, level, spare: null });
    }
    this.#rawJobsInRow = 0;
    const data = owned(raw);
    if (level >= SPREAD_FROM_LEVEL) {
      this.#spread = this.#pool.size;
      this.#jobsBelowSpread = 0;
    } else {
      this.#spread = 1;
      if (++this.#jobsBelowSpread >= RETIRE_AFTER_JOBS && this.#pool.started > 1) this.#pool.retireBeyond(1);
    }
    const reuse = this.#takeReturned();
    return this.#pool.run({ raw: data, level, reuse }, level, [...transferListOf(data), ...reuse], this.#spread);
  }

  /** The payload memory held for the next job, no longer held here (a worker's, or the collector's once dropped). */
  #takeReturned(): ArrayBuffer[] {
    const taken = this.#returned;
    this.#returned = [];
    this.#returnedBytes = 0;
    return taken;
  }

  /** Stops the workers; jobs still running reject with CompressionPoolClosed. */
  close(): Promise<void> {
    return this.#pool.close(new CompressionPoolClosed());
  }

  #partsOf(res: CompressResponse, level: number): CompressedParts {
    if (res.error !== undefined) throw new Error(`compression failed: ${res.error}`);
    if (res.codec === 'zstd') {
      this.#lent.set(res.payload.buffer as ArrayBuffer, res.payload.byteOffset + res.payload.byteLength);
      this.#payloads++;
      if (res.freshPayload) this.#freshPayloads++;
    }
    return partsOf(res, level);
  }
}

function partsOf(res: CompressResponse & { error?: undefined }, level: number): CompressedParts {
  return {
    codec: res.codec,
    payload: Buffer.from(res.payload.buffer, res.payload.byteOffset, res.payload.byteLength),
    rawHash: Buffer.from(res.rawHash.buffer, res.rawHash.byteOffset, res.rawHash.byteLength),
    compressNs: res.compressNs,
    level,
    spare: res.spare ? Buffer.from(res.spare.buffer, res.spare.byteOffset, res.spare.byteLength) : null,
  };
}
