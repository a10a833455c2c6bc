// Compresses one chunk into one zstd frame, or keeps it raw where zstd does not shrink it. Plain JavaScript (typed
// by zstd-chunk.d.mts) because the compression workers load it without tsx: registering tsx costs each worker
// about a second and 30 MB, more than compressing a chunk.
import binding from 'zstd-napi/binding.js';

/**
 * From this level up, zstd sizes its match tables (hashLog, chainLog) for the whole window: up to 2^23-2^24 entries
 * at 4 MiB chunks, 40-65 MB per context, and a context keeps the largest it ever needed. Capped at 2^21 entries a
 * context stays near 15 MB. On the bench's mixed data (4 MiB chunks) the ratio moved by 2% at most (level 19: 0.278
 * -> 0.284, level 15: 0.297 -> 0.302, level 12: 0.3135 -> 0.3141) and compression got faster, not slower. Only the
 * encoder's search is bounded: the frames and the window a decoder needs are unchanged. Levels below keep zstd's
 * own tables, which are already at or below the cap.
 */
export const CAPPED_FROM_LEVEL = 10;
export const TABLE_LOG_CAP = 21;

const { compressionLevel, hashLog, chainLog } = binding.CParameter;

// allocUnsafeSlow: the payload owns its memory, so it can move to another thread without a copy.
function allocatePayload(n) {
  return Buffer.allocUnsafeSlow(n);
}

export class ZstdChunkCompressor {
  #cctx = new binding.CCtx();
  #scratch = Buffer.alloc(0);
  #level = 0;

  /** `allocate(n)`: memory for an n-byte payload (by default new memory each time; a worker's comes from its shelf). */
  compress(raw, level, allocate = allocatePayload) {
    if (raw.length === 0 || level === 0) return { codec: 'raw', payload: raw };
    const bound = binding.compressBound(raw.length);
    if (this.#scratch.length < bound) this.#scratch = Buffer.allocUnsafe(bound);
    if (level !== this.#level) this.#setLevel(level);
    const n = this.#cctx.compress2(this.#scratch, raw);
    // Equal length would decode fine, but raw is cheaper to check and keeps "zstd => smaller" a wire invariant.
    if (n >= raw.length) return { codec: 'raw', payload: raw };
    // Copied out of the scratch, which the next chunk reuses.
    const payload = allocate(n);
    this.#scratch.copy(payload, 0, 0, n);
    return { codec: 'zstd', payload };
  }

  #setLevel(level) {
    const cap = level >= CAPPED_FROM_LEVEL ? TABLE_LOG_CAP : 0; // 0: the level's own value
    this.#cctx.setParameter(compressionLevel, level);
    this.#cctx.setParameter(hashLog, cap);
    this.#cctx.setParameter(chainLog, cap);
    this.#level = level;
  }
}
