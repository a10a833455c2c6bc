/**
 * A request's bytes, copied as they arrive into chunk memory that is used again (core/wire/chunk-memory.ts).
 *
 * node reads a request body in pieces of up to 64 KiB, each a buffer of its own. Kept as they came, a frame's pieces
 * live until the frame is written to the spool and btrfs receive has taken them: long enough for V8 to move them out
 * of the young generation, where only a mark-compact frees them, and it starts one after tens of MB of them. That
 * garbage was serve's largest cost in CPU (the collector's threads) and memory (docs/performance.md, issue 22).
 * Copied here at once, a body piece dies young (a scavenge frees it), and the copy lives in slabs of chunk memory
 * that the spool and the receive say done (server/spool/append.ts): one copy of every byte, which costs less than the
 * collection it spares. The views of one slab continue each other, so a frame is held in a few pieces however small
 * the reads were (a slow line that delivers a few bytes a segment).
 */
import { chunkDone, chunkMemory } from '../../core/wire/chunk-memory.ts';

/** Bytes a slab holds: about a quarter of a frame at the default chunk size, the receive's piece size. */
export const SLAB_BYTES = 1024 * 1024;

export class ArrivalMemory {
  #slab: Buffer | null = null;
  #used = 0;

  /** `chunk`'s bytes, copied into slabs: one view, or more where they run over into the next slab. */
  copy(chunk: Buffer): Buffer[] {
    const views: Buffer[] = [];
    for (let at = 0; at < chunk.length; ) {
      if (this.#slab === null || this.#used === SLAB_BYTES) {
        this.#slab = chunkMemory(SLAB_BYTES);
        this.#used = 0;
      }
      const n = Math.min(SLAB_BYTES - this.#used, chunk.length - at);
      chunk.copy(this.#slab, this.#used, at, at + n);
      views.push(this.#slab.subarray(this.#used, this.#used + n));
      this.#used += n;
      at += n;
    }
    return views;
  }

  /** No more bytes come: the rest of the last slab is nobody's, so it is done now. */
  close(): void {
    if (this.#slab !== null) chunkDone(this.#slab.subarray(this.#used));
    this.#slab = null;
  }
}
