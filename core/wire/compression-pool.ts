/**
 * Frames at the higher levels compress on worker threads, so a push on a slow line uses every core for the best
 * ratio that keeps ahead; each such job hashes and compresses one raw chunk, goes to the least busy worker and comes
 * back in any order (the encoder puts them back in order); core/worker-pool.ts runs the workers. Raw frames and the
 * low levels are done here, on the calling thread, with no worker at all (see WORKERS_FROM_LEVEL).
 */
import os from 'node:os';
import type { FrameCodec } from './codec.ts';
import { NO_COMPRESSION, validateZstdLevel } from './codec.ts';
import type { CompressRequest, CompressResponse } from './compression-messages.ts';
import { sha256 } from './chain.ts';
import { owned, transferListOf } from './transferable.mjs';
import { SHELF_BYTES } from './payload-shelf.mjs';
import { ChunkCompression } from './chunk-compression.mjs';
import { WorkerPool } from '../worker-pool.ts';

export interface CompressedParts {
  codec: FrameCodec;
  payload: Buffer;
  rawHash: Buffer;
  /** Wall time the compression took on its thread (hashing not included). */
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
 * Below this level a chunk is compressed here, on the calling thread, and no worker starts: one thread compresses
 * faster than any link such a level is chosen for needs (level 3: about 300 MB/s raw on one core here, hashing
 * included ~250; gigabit carries 117), and a worker costs a push 20-35 MB of peak RSS (its V8 isolate, and its zstd
 * context, scratch and payloads in a malloc arena of its own) and a round trip per chunk. Where --compress auto
 * settles at raw or a low level, as on a LAN, or compresses its first frames before it has measured the line, that
 * was memory and CPU for nothing: the bench's quarter stream on loopback, alternated, push's peak RSS 153-170 MB
 * against 169-194 and its CPU lower at a fixed level 3 (docs/performance.md, session 29). From this level on, as auto
 * climbs on a slow line, jobs go to every worker.
 */
export const WORKERS_FROM_LEVEL = 4;
/**
 * After this many jobs in a row done here (raw, or below WORKERS_FROM_LEVEL; 128 MiB raw at 4 MiB chunks) the
 * workers stop, and after this many raw ones in a row this thread's zstd context, scratch and payload memory go too:
 * auto climbs while it learns the link and often comes back down, and a worker kept idle from then on held its
 * memory for the rest of the push. Many jobs, so a level flapping around the threshold does not restart a worker each
 * time.
 */
export const RETIRE_AFTER_JOBS = 32;

export class CompressionPool {
  readonly #pool: WorkerPool<CompressRequest, CompressResponse, CompressedParts, number>;
  #spread = 1;
  #hereInRow = 0;
  #rawInRow = 0;
  /** What compressing here keeps between jobs: made at the first such job, let go after a long spell of raw ones. */
  #here: ChunkCompression | null = null;
  #closed = false;
  /**
   * zstd payload memory handed out, by its memory: where the payload ends in it (its last byte recycled frees it), and
   * whether it was made here or on a worker.
   */
  readonly #lent = new WeakMap<ArrayBuffer, { end: number; here: boolean }>();
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
    const lent = this.#lent.get(memory);
    if (lent === undefined || piece.byteOffset + piece.byteLength !== lent.end) return;
    this.#lent.delete(memory);
    if (lent.here) {
      this.#here?.reuse(memory);
      return;
    }
    // With no worker running (raw frames for a while), no job would take it back: held here it would only be held.
    if (this.#pool.started === 0 || this.#returnedBytes + memory.byteLength > SHELF_BYTES) return;
    this.#returned.push(memory);
    this.#returnedBytes += memory.byteLength;
  }

  /** Bytes of payload memory held here for the next job. */
  get heldPayloadBytes(): number {
    return this.#returnedBytes + (this.#here?.shelfBytes ?? 0);
  }

  /** zstd payloads made so far, and how many of them in new memory (for tests and the bench). */
  get payloadCounts(): { payloads: number; fresh: number } {
    return { payloads: this.#payloads, fresh: this.#freshPayloads };
  }

  /** Workers the pool may start: what a level chooser can count on at the levels that use them all. */
  get size(): number {
    return this.#pool.size;
  }

  /** Workers the last job's level spreads over (1 for a job done here): a caller keeps about this many jobs in flight (FrameEncoder). */
  get inUse(): number {
    return this.#spread;
  }

  /** Worker threads running now: none until a job's level is WORKERS_FROM_LEVEL or more. */
  get workersStarted(): number {
    return this.#pool.started;
  }

  /**
   * Hashes and compresses one chunk at `level` (0: raw). Below WORKERS_FROM_LEVEL that is done here, before this
   * returns; from it on the chunk's memory may be moved to a worker. SHA-256 costs this thread about 2 ms per 4 MiB
   * chunk (0.56 s/GB with the CPU's SHA instructions), level 3 about 13 ms more: less than a worker's round trip and
   * memory. After RETIRE_AFTER_JOBS jobs in a row done here, the workers stop.
   */
  run(raw: Buffer, level: number): Promise<CompressedParts> {
    validateZstdLevel(level);
    if (this.#closed) return Promise.reject(new CompressionPoolClosed());
    if (level < WORKERS_FROM_LEVEL) {
      this.#spread = 1;
      if (++this.#hereInRow >= RETIRE_AFTER_JOBS && this.#pool.started > 0) {
        this.#pool.retireBeyond(0);
        this.#takeReturned();
      }
      this.#rawInRow = level === NO_COMPRESSION ? this.#rawInRow + 1 : 0;
      if (this.#rawInRow >= RETIRE_AFTER_JOBS) this.#here = null;
      return Promise.resolve(this.#compressHere(raw, level));
    }
    this.#hereInRow = 0;
    this.#rawInRow = 0;
    this.#spread = this.#pool.size;
    const data = owned(raw);
    const reuse = this.#takeReturned();
    return this.#pool.run({ raw: data, level, reuse }, level, [...transferListOf(data), ...reuse], this.#spread);
  }

  /**
   * As a worker does (compression-worker.mjs, the same ChunkCompression), on this thread: the payload in memory used
   * again once the server has it, and the raw chunk's memory free for the next chunk once it is compressed.
   */
  #compressHere(raw: Buffer, level: number): CompressedParts {
    if (level === NO_COMPRESSION) return { codec: 'raw', payload: raw, rawHash: sha256(raw), compressNs: 0, level, spare: null };
    const { codec, payload, rawHash, compressNs, freshPayload } = (this.#here ??= new ChunkCompression()).run(raw, level);
    if (codec === 'raw') return { codec, payload, rawHash, compressNs, level, spare: null };
    this.#lent.set(payload.buffer as ArrayBuffer, { end: payload.byteOffset + payload.byteLength, here: true });
    this.#payloads++;
    if (freshPayload) this.#freshPayloads++;
    return { codec, payload, rawHash, compressNs, level, spare: raw };
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
    this.#closed = true;
    this.#here = null;
    return this.#pool.close(new CompressionPoolClosed());
  }

  #partsOf(res: CompressResponse, level: number): CompressedParts {
    if (res.error !== undefined) throw new Error(`compression failed: ${res.error}`);
    if (res.codec === 'zstd') {
      this.#lent.set(res.payload.buffer as ArrayBuffer, { end: res.payload.byteOffset + res.payload.byteLength, here: false });
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
