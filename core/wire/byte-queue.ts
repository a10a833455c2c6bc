import { isChunkMemory } from './chunk-memory.ts';

/**
 * A FIFO of received byte slices from which exact-length pieces are taken: a view when the piece lies in one
 * slice (the common case: a frame inside one network read), one copy when it spans several; or, with takePieces,
 * as the views of the slices it spans, without a copy.
 */
export class ByteQueue {
  #slices: Buffer[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Adds a slice; the queue keeps a view of it, so the caller must not reuse the buffer. */
  push(slice: Buffer): void {
    if (slice.length === 0) return;
    this.#length += slice.length;
    // A slice that continues the last one in memory (small network chunks copied into one slab by the server's frame
    // cutter) joins it: a frame in a million 1-byte chunks is then a few slices, not a million Buffers held.
    const last = this.#slices[this.#slices.length - 1];
    if (last !== undefined && last.buffer === slice.buffer && last.byteOffset + last.length === slice.byteOffset) {
      this.#slices[this.#slices.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + slice.length);
      return;
    }
    this.#slices.push(slice);
  }

  /**
   * Removes and returns the first n bytes (n <= length). When they span slices they are joined into `into` if it is
   * large enough (the result is then a view of it, valid until the caller reuses it), else into a new buffer.
   */
  take(n: number, into?: Buffer): Buffer {
    if (n > this.#length) throw new RangeError(`take(${n}) from a queue of ${this.#length} bytes`);
    this.#length -= n;
    const first = this.#slices[0];
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.#slices.shift();
      else this.#slices[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = into !== undefined && into.length >= n ? into.subarray(0, n) : Buffer.allocUnsafe(n);
    let filled = 0;
    let used = 0;
    // One splice at the end, not a shift per slice: a peer that sends 1-byte writes must not make this quadratic.
    while (filled < n) {
      const slice = this.#slices[used] as Buffer;
      const k = Math.min(slice.length, n - filled);
      slice.copy(out, filled, 0, k);
      filled += k;
      if (k === slice.length) used++;
      else this.#slices[used] = slice.subarray(k);
    }
    this.#slices.splice(0, used);
    return out;
  }

  /**
   * Removes the first n bytes (n <= length) and returns them as views of the slices they lie in, in order, with no
   * copy: a 4 MiB raw frame that arrived in 64 KiB network reads leaves as those reads.
   */
  takePieces(n: number): Buffer[] {
    if (n > this.#length) throw new RangeError(`takePieces(${n}) from a queue of ${this.#length} bytes`);
    this.#length -= n;
    const pieces: Buffer[] = [];
    let left = n;
    let used = 0;
    while (left > 0) {
      const slice = this.#slices[used] as Buffer;
      if (slice.length <= left) {
        pieces.push(slice);
        left -= slice.length;
        used++;
      } else {
        pieces.push(slice.subarray(0, left));
        this.#slices[used] = slice.subarray(left);
        left = 0;
      }
    }
    this.#slices.splice(0, used);
    return pieces;
  }

  /**
   * A small tail left of a big slice would keep all of that slice's memory alive while we wait for the rest of a
   * frame; copy such a tail so only what is still needed stays.
   */
  compactTail(): void {
    const last = this.#slices.at(-1);
    // Chunk memory is used again once its bytes are done (chunk-memory.ts): a copy would leave them undone.
    if (last !== undefined && last.buffer.byteLength > 2 * last.length + 65536 && !isChunkMemory(last)) {
      this.#slices[this.#slices.length - 1] = Buffer.from(last);
    }
  }
}
