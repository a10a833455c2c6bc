/**
 * Cuts a raw byte stream into chunks of exactly `chunkSize` bytes (the last may be shorter). Bytes are copied only
 * when a chunk straddles input buffers; a chunk that lies whole inside one input buffer is a view of it. So input
 * buffers must not be reused by the caller after push (Node stream chunks never are).
 *
 * A chunk's memory that is free again (the compression workers send it back once compressed) can be handed back
 * with recycle(): the next chunks are filled in it instead of in fresh buffers, so a long stream does not leave a
 * trail of dead 4 MiB buffers for the GC to find.
 */
import { validateChunkSize } from './frame.ts';

export function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Spare buffers kept at most: about what the PATCH in flight and the read-ahead give back (8 MiB PATCHes of 4 MiB raw
 * frames), which the next chunks use up before the next PATCH is acknowledged. More were held, not used: with 8, a
 * push's peak RSS held up to 16 MiB more of idle spares; with 2, fresh chunks were allocated where spares ran out
 * and peak RSS rose instead (issue 22, docs/performance.md).
 */
const MAX_SPARES = 4;

export class RawChunker {
  readonly chunkSize: number;
  #partial: Buffer | null = null;
  #fill = 0;
  readonly #spares: Buffer[] = [];

  constructor(chunkSize: number) {
    this.chunkSize = validateChunkSize(chunkSize);
  }

  /** Takes more input; returns the chunks it completed, each exactly chunkSize bytes. */
  push(data: Uint8Array): Buffer[] {
    const size = this.chunkSize;
    let b = asBuffer(data);
    const out: Buffer[] = [];
    if (this.#partial !== null) {
      const n = Math.min(size - this.#fill, b.length);
      b.copy(this.#partial, this.#fill, 0, n);
      this.#fill += n;
      b = b.subarray(n);
      if (this.#fill < size) return out;
      out.push(this.#partial);
      this.#partial = null;
      this.#fill = 0;
    }
    while (b.length >= size) {
      out.push(b.subarray(0, size));
      b = b.subarray(size);
    }
    if (b.length > 0) {
      // A chunk-sized buffer to fill in place; the tail is copied so the caller's buffer is not pinned.
      this.#partial = this.#spares.pop() ?? Buffer.allocUnsafe(size);
      b.copy(this.#partial);
      this.#fill = b.length;
    }
    return out;
  }

  /**
   * Takes back the memory of a chunk that nothing uses any more; a later chunk that straddles input buffers is filled
   * in it. Only a buffer that owns exactly chunkSize bytes of memory is kept: a view (a chunk cut from a large input,
   * a slice of a bigger read) shares its memory with something else, which writing into it would change.
   */
  recycle(buffer: Buffer): void {
    const owned = buffer.byteOffset === 0 && buffer.buffer.byteLength === this.chunkSize && buffer.length === this.chunkSize;
    if (owned && this.#spares.length < MAX_SPARES) this.#spares.push(buffer);
  }

  /**
   * Hands out a spare chunk's memory (exactly chunkSize bytes, used by nothing) for the caller to fill with the next
   * chunk's bytes itself, or null when none is spare. The caller owns it from then on.
   */
  takeSpare(): Buffer | null {
    return this.#spares.pop() ?? null;
  }

  /** Bytes held that do not make a full chunk yet. */
  get pendingBytes(): number {
    return this.#fill;
  }

  /** Ends the input: returns the short last chunk (1..chunkSize-1 bytes), or null if nothing is held. */
  flush(): Buffer | null {
    if (this.#partial === null) return null;
    const last = this.#partial.subarray(0, this.#fill);
    this.#partial = null;
    this.#fill = 0;
    return last;
  }
}

/** Async-iterable form: yields full chunks, then the short last one if any. */
export async function* rawChunks(source: AsyncIterable<Uint8Array>, chunkSize: number): AsyncGenerator<Buffer> {
  const chunker = new RawChunker(chunkSize);
  for await (const data of source) yield* chunker.push(data);
  const last = chunker.flush();
  if (last !== null) yield last;
}
