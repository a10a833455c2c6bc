// Memory for zstd payloads, used again (issue 22). Plain JavaScript (typed by payload-shelf.d.mts): the compression
// workers load it without tsx.
//
// A payload made fresh for every frame is allocated on the worker and freed on the main thread once the server has
// acknowledged it and a mark-compact has found it dead, which V8 starts only after tens of MB of such memory. glibc
// returns a freed block to the arena of the thread that allocated it, so the worker's arena grew to hold every
// payload between two mark-compacts: 33-37 MB of a push's peak RSS (smaps at the peak, docs/performance.md). Instead
// the main thread sends acknowledged payload memory back with the next job (CompressionPool.recycle), and the worker
// copies the next payload into the smallest piece that fits.

/** Payload memory a worker keeps, and the main thread holds for it: about what a PATCH in flight and its read-ahead hold. */
export const SHELF_BYTES = 16 * 1024 * 1024;
/** New memory is made in steps of this, so a piece fits later payloads of about the same size. */
const GRAIN = 256 * 1024;

export class PayloadShelf {
  #free = [];
  #bytes = 0;
  /** Pieces made new so far. */
  fresh = 0;

  /** Bytes of memory kept for later payloads. */
  get bytes() {
    return this.#bytes;
  }

  /** Takes back memory nothing reads any more; beyond SHELF_BYTES it is left to the collector. */
  put(memory) {
    if (this.#bytes + memory.byteLength > SHELF_BYTES) return;
    this.#free.push(memory);
    this.#bytes += memory.byteLength;
  }

  /**
   * A buffer of `n` bytes at the start of memory it alone uses, so the memory moves to another thread without a
   * copy. Where no kept piece fits, the smallest is let go: the stream's payloads have grown past it.
   */
  take(n) {
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const size = this.#free[i].byteLength;
      if (size >= n && (best < 0 || size < this.#free[best].byteLength)) best = i;
    }
    if (best < 0) {
      this.#dropSmallest();
      this.fresh++;
      return Buffer.allocUnsafeSlow(Math.ceil(n / GRAIN) * GRAIN).subarray(0, n);
    }
    const [memory] = this.#free.splice(best, 1);
    this.#bytes -= memory.byteLength;
    return Buffer.from(memory, 0, n);
  }

  #dropSmallest() {
    if (this.#free.length === 0) return;
    let smallest = 0;
    for (let i = 1; i < this.#free.length; i++) if (this.#free[i].byteLength < this.#free[smallest].byteLength) smallest = i;
    this.#bytes -= this.#free.splice(smallest, 1)[0].byteLength;
  }
}
