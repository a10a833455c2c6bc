/**
 * `--compress auto|none|1..19` (and the config\'s `compress`) parsed: a module apart from the compression itself
 * (client/push/compression.ts, which loads zstd and its workers), so that the command line can check the option
 * without loading them (client/cli-options.ts; issue 22).
 */

/** A zstd level (0: none), or 'auto'. */
export type CompressSetting = 'auto' | number;

export class CompressSettingError extends RangeError {}

/** core/wire's NO_COMPRESSION: every frame goes raw. */
const NONE = 0;

export function parseCompressSetting(value: string): CompressSetting {
  const v = value.trim().toLowerCase();
  if (v === 'auto') return 'auto';
  if (v === 'none' || v === 'off') return NONE;
  const n = Number(v);
  // 1..19 lies inside every zstd's range (core/wire's validateZstdLevel, which asks the binding, checks it again
  // where the level is used): 20..22 need --ultra's memory.
  if (!Number.isInteger(n) || n < 1 || n > 19) {
    throw new CompressSettingError(`expected auto, none or a zstd level from 1 to 19, got "${value}"`);
  }
  return n;
}
