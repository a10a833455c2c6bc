/**
 * Memory for decoded chunks, used again once `btrfs receive`'s pipe has taken every byte of it (issue 22).
 *
 * A zstd frame decodes into a buffer of its chunk's size (4 MiB). Allocated fresh for each frame, every one is garbage
 * once btrfs receive has it, and V8 frees such memory only at a mark-compact, which it starts after tens of MB of
 * them: at serve's peak, most of its ArrayBuffers were decoded frames already received (docs/performance.md). Here a
 * decoded chunk's memory goes back to a short free list once the receive's input says every byte of it is in the
 * kernel's pipe (`chunkTaken`, from the pipe write's callback), and the next frame decodes into it.
 *
 * Why that is safe: every stage between the decoder and the pipe passes a chunk on as views of it or copies what it
 * keeps (the send-stream check copies a command that spans chunks, the UUID rewriter the commands it rewrites), so once
 * the pipe has taken a byte nothing reads it again. Memory whose bytes do not all reach the pipe (a frame a receive
 * that is behind never took, a command a stage copied, a receive that failed) is never counted whole: it is left to
 * the collector as before. A stage that kept a view to read after passing it on would break this; it would show as a
 * failed receive (btrfs checks each command's CRC32C, and the frames' chain is checked before), not a silent one.
 */

/** Decoded chunks' memory kept for the next frames: a receive holds about this many decoded chunks in flight. */
const KEEP = 4;
/** An idle thread gives the kept memory back to the collector (a server between pushes holds none of it). */
const IDLE_MS = 10_000;

/** Bytes of each chunk handed out that the pipe has not yet taken. */
const owed = new WeakMap<ArrayBuffer, number>();
/** Memory whose every byte the pipe took, by size, newest last. */
const free = new Map<number, ArrayBuffer[]>();
let idleTimer: NodeJS.Timeout | null = null;
let fresh = 0;
let reused = 0;

/** A buffer of `size` bytes (its content undefined) for a decoded chunk: memory the pipe took whole, or new. */
export function chunkMemory(size: number): Buffer {
  armIdleTimer();
  const memory = free.get(size)?.pop();
  if (memory !== undefined) reused++;
  else fresh++;
  const buffer = memory === undefined ? Buffer.allocUnsafeSlow(size) : Buffer.from(memory, 0, size);
  owed.set(buffer.buffer as ArrayBuffer, size);
  return buffer;
}

/** `piece` is in btrfs receive's pipe: once every byte of its chunk is, that memory is used again. */
export function chunkTaken(piece: Uint8Array): void {
  const memory = piece.buffer as ArrayBuffer;
  const left = owed.get(memory);
  if (left === undefined) return;
  if (left > piece.byteLength) {
    owed.set(memory, left - piece.byteLength);
    return;
  }
  owed.delete(memory);
  const kept = free.get(memory.byteLength) ?? [];
  if (kept.length < KEEP) kept.push(memory);
  free.set(memory.byteLength, kept);
}

/** How many decoded chunks got new memory and how many reused memory, on this thread (for tests and the bench). */
export function chunkMemoryCounts(): { fresh: number; reused: number } {
  return { fresh, reused };
}

function armIdleTimer(): void {
  if (idleTimer !== null) idleTimer.refresh();
  else idleTimer = setTimeout(() => free.clear(), IDLE_MS).unref();
}
