// Plain JavaScript (typed by transferable.d.mts): the compression workers load it without tsx.

/**
 * A buffer that owns its whole ArrayBuffer, so it can be transferred to another thread without a copy. A view into
 * a bigger ArrayBuffer (Node's slab for small buffers, a slice of a larger read) is copied first: posting the view
 * itself would structured-clone its entire ArrayBuffer, and transferring it would detach memory others still use.
 */
export function owned(b) {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) return b;
  const copy = new Uint8Array(new ArrayBuffer(b.byteLength));
  copy.set(b);
  return copy;
}

/** The ArrayBuffers of buffers made by owned(), to transfer with postMessage. */
export function transferListOf(...buffers) {
  return [...new Set(buffers.map((b) => b.buffer))];
}
