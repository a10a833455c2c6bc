/**
 * A step over a stream's chunks that runs where the chunks are (push's send-stream check and renaming run inside
 * btrfs send's reads, core/btrfs/pipe-reads.ts), or as a stream stage of its own (pushStep).
 */
import type { Transform, TransformCallback } from 'node:stream';

export interface ChunkStep {
  /** Takes each chunk in order; returns what to pass on in its place (none, it, or others). Throws to fail the stream. */
  take(chunk: Buffer): readonly Buffer[];
  /** Every chunk was taken and the stream is whole: what is left to pass on. Throws to fail the stream. */
  end(): readonly Buffer[];
}

/** Passes each chunk on as it is. */
export const AS_IS: ChunkStep = { take: (chunk) => [chunk], end: () => [] };

/** In a Transform: pushes what `step` gives, then calls back; a throw fails the stream with its error. */
export function pushStep(stream: Transform, step: () => readonly Buffer[], callback: TransformCallback): void {
  let out: readonly Buffer[];
  try {
    out = step();
  } catch (err) {
    callback(err as Error);
    return;
  }
  for (const chunk of out) stream.push(chunk);
  callback();
}
