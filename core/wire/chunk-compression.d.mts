import type { FrameCodec } from './codec.ts';

/** Hashes and compresses raw chunks, one zstd context and one payload shelf (see chunk-compression.mjs). */
export declare class ChunkCompression {
  /** Bytes of payload memory kept for later payloads. */
  readonly shelfBytes: number;
  /** Memory of a payload nothing reads any more (the server has it): a later payload is made in it. */
  reuse(memory: ArrayBuffer): void;
  /**
   * `raw`'s SHA-256 and its frame's payload at `level`: zstd in shelf memory, or `raw` itself where zstd does not
   * shrink it; how long zstd took, and whether the payload needed new memory.
   */
  run(raw: Buffer, level: number): { codec: FrameCodec; payload: Buffer; rawHash: Buffer; compressNs: number; freshPayload: boolean };
}
