/**
 * Chunk-sized memory that is used again once nothing reads it any more (issue 22): decoded frames, and on the server
 * the bytes of each request as they arrive (server/spool/arrival-memory.ts).
 *
 * A zstd frame decodes into a buffer of its chunk's size (4 MiB), and a request body arrives in node's 64 KiB reads.
 * Allocated fresh, every one is garbage once btrfs receive has it, and V8 frees such memory only at a mark-compact,
 * which it starts after tens of MB of them: at serve's peak, most of its ArrayBuffers were memory already received
 * (docs/performance.md). Here memory goes back to a short free list once every byte of it is done (`chunkDone`):
 * taken by btrfs receive's pipe (its write's callback, core/btrfs/receive.ts `taken`), or written to the spool where
 * nothing reads it from memory again; the next chunk of its size is made in it.
 *
 * Why that is safe: every stage between the decoder and the pipe passes a chunk on as views of it or copies what it
 * keeps (the send-stream check copies a command that spans chunks, the UUID rewriter the commands it rewrites), and
 * the spool says a byte is done only after its write and only for bytes it hands to no receive, so once a byte is
 * done nothing reads it again. Memory with a byte that is never said done (a frame a receive that is behind never
 * took, a command a stage copied, a failed request or receive) is left to the collector, as before. A stage that kept
 * a view to read after passing it on would break this; it would show as a failed receive (btrfs checks each
 * command's CRC32C, and the frames' chain is checked before), not a silent one.
 */

/** Memory kept for later, per size: a receive holds about this much in flight. */
const KEEP_BYTES = 16 * 1024 * 1024;
/** An idle thread gives the kept memory back to the collector (a server between pushes holds none of it). */
const IDLE_MS = 10_000;

/** Bytes of each piece of memory handed out that are not done yet. */
const owed = new WeakMap<ArrayBuffer, number>();
/** Memory whose every byte is done, by size, newest last. */
const free = new Map<number, ArrayBuffer[]>();
let idleTimer: NodeJS.Timeout | null = null;
let fresh = 0;
let reused = 0;

/** A buffer of `size` bytes (its content undefined): memory whose every byte was done, or new. */
export function chunkMemory(size: number): Buffer {
  armIdleTimer();
  const memory = free.get(size)?.pop();
  if (memory !== undefined) reused++;
  else fresh++;
  const buffer = memory === undefined ? Buffer.allocUnsafeSlow(size) : Buffer.from(memory, 0, size);
  owed.set(buffer.buffer as ArrayBuffer, size);
  return buffer;
}

/** Nothing reads `piece` again: once every byte of its memory is done, that memory is used again. */
export function chunkDone(piece: Uint8Array): void {
  const memory = piece.buffer as ArrayBuffer;
  const left = owed.get(memory);
  if (left === undefined || piece.byteLength === 0) return;
  if (left > piece.byteLength) {
    owed.set(memory, left - piece.byteLength);
    return;
  }
  owed.delete(memory);
  const kept = free.get(memory.byteLength) ?? [];
  if ((kept.length + 1) * memory.byteLength <= KEEP_BYTES) kept.push(memory);
  free.set(memory.byteLength, kept);
}

/** Whether `piece` is in memory from chunkMemory that is still in use (copying it would leave its bytes undone). */
export function isChunkMemory(piece: Uint8Array): boolean {
  return owed.has(piece.buffer as ArrayBuffer);
}

/** How many chunks got new memory and how many reused memory, on this thread (for tests and the bench). */
export function chunkMemoryCounts(): { fresh: number; reused: number } {
  return { fresh, reused };
}

function armIdleTimer(): void {
  if (idleTimer !== null) idleTimer.refresh();
  else idleTimer = setTimeout(() => free.clear(), IDLE_MS).unref();
}
