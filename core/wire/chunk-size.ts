/**
 * The chunk size's limits and their check, apart from frame.ts: the command line checks `--chunk-size` as it parses
 * it, and frame.ts loads zstd and crc32, which a command's start must not (test/deploy/lazy-commands.test.ts).
 */
export const MIN_CHUNK_SIZE = 64 * 1024;
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;

export function validateChunkSize(chunkSize: number): number {
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new RangeError(`chunk size must be an integer in ${MIN_CHUNK_SIZE}..${MAX_CHUNK_SIZE} (${MIN_CHUNK_SIZE / 1024}K..${MAX_CHUNK_SIZE / 1024 / 1024}M), got ${chunkSize}`);
  }
  return chunkSize;
}
