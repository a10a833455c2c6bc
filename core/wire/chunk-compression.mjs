// Hashes a raw chunk and compresses it into payload memory used again (payload-shelf.mjs): the one sequence that a
// compression worker (compression-worker.mjs) and the pool's own thread (compression-pool.ts, zstd levels 1-3) both
// run, so that a frame is the same bytes whichever thread made it. Plain JavaScript: see zstd-chunk.mjs.
import { createHash } from 'node:crypto';
import { PayloadShelf } from './payload-shelf.mjs';
import { ZstdChunkCompressor } from './zstd-chunk.mjs';

export class ChunkCompression {
  #compressor = new ZstdChunkCompressor();
  #shelf = new PayloadShelf();
  #take = (n) => this.#shelf.take(n);

  /** Bytes of payload memory kept for later payloads. */
  get shelfBytes() {
    return this.#shelf.bytes;
  }

  /** Memory of a payload nothing reads any more (the server has it): a later payload is made in it. */
  reuse(memory) {
    this.#shelf.put(memory);
  }

  run(raw, level) {
    const rawHash = createHash('sha256').update(raw).digest();
    const freshBefore = this.#shelf.fresh;
    const started = process.hrtime.bigint();
    const { codec, payload } = this.#compressor.compress(raw, level, this.#take);
    const compressNs = Number(process.hrtime.bigint() - started);
    return { codec, payload, rawHash, compressNs, freshPayload: this.#shelf.fresh > freshBefore };
  }
}
