// Compresses one chunk into one zstd frame, or keeps it raw where zstd does not shrink it. Plain JavaScript (typed
// by zstd-chunk.d.mts) because the compression workers load it without tsx: registering tsx costs each worker
// about a second and 30 MB, more than compressing a chunk.
import binding from 'zstd-napi/binding.js';

export class ZstdChunkCompressor {
  #cctx = new binding.CCtx();
  #scratch = Buffer.alloc(0);

  compress(raw, level) {
    if (raw.length === 0 || level === 0) return { codec: 'raw', payload: raw };
    const bound = binding.compressBound(raw.length);
    if (this.#scratch.length < bound) this.#scratch = Buffer.allocUnsafe(bound);
    const n = this.#cctx.compress(this.#scratch, raw, level);
    // Equal length would decode fine, but raw is cheaper to check and keeps "zstd => smaller" a wire invariant.
    if (n >= raw.length) return { codec: 'raw', payload: raw };
    // Copied out of the scratch, which the next chunk reuses; allocUnsafeSlow so the copy owns its memory and can
    // move to another thread without a copy.
    const payload = Buffer.allocUnsafeSlow(n);
    this.#scratch.copy(payload, 0, 0, n);
    return { codec: 'zstd', payload };
  }
}
