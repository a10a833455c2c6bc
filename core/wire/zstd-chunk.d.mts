import type { FrameCodec } from './codec.ts';

/** Levels from which zstd's match tables are capped at 2^TABLE_LOG_CAP entries (see zstd-chunk.mjs). */
export declare const CAPPED_FROM_LEVEL: number;
export declare const TABLE_LOG_CAP: number;

export declare class ZstdChunkCompressor {
  /** Level 0 keeps the chunk raw. `payload.length <= raw.length` always; zstd only when strictly smaller. */
  compress(raw: Buffer, level: number, allocate?: (n: number) => Buffer): { codec: FrameCodec; payload: Buffer };
}
