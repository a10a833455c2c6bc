export declare class ZstdChunkCompressor {
  /** Level 0 keeps the chunk raw. `payload.length <= raw.length` always; zstd only when strictly smaller. */
  compress(raw: Buffer, level: number): { codec: 'raw' | 'zstd'; payload: Buffer };
}
