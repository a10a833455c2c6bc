/**
 * `--compress auto|none|1..19` for one push: the worker pool every snapshot of the push compresses on, the level
 * (fixed, or chosen frame by frame from what the link and the workers measure), and the link meter that feeds it.
 */
import { CompressionPool, NO_COMPRESSION, validateZstdLevel, type LevelChooser } from '../../core/wire/index.ts';
import { AutoLevel } from './auto-level.ts';
import { LinkMeter } from '../upload/link-meter.ts';

/** A zstd level (0: none), or 'auto'. */
export type CompressSetting = 'auto' | number;

export class CompressSettingError extends RangeError {}

export function parseCompressSetting(value: string): CompressSetting {
  const v = value.trim().toLowerCase();
  if (v === 'auto') return 'auto';
  if (v === 'none' || v === 'off') return NO_COMPRESSION;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 19) {
    throw new CompressSettingError(`expected auto, none or a zstd level from 1 to 19, got "${value}"`);
  }
  return validateZstdLevel(n);
}

export interface Compression {
  pool: CompressionPool;
  level: number | LevelChooser;
  linkMeter: LinkMeter;
  close(): Promise<void>;
}

export function startCompression(setting: CompressSetting, onLevelChange?: (level: number, why: string) => void): Compression {
  const pool = new CompressionPool();
  const linkMeter = new LinkMeter();
  const level =
    setting === 'auto'
      ? new AutoLevel({ workers: pool.size, linkRate: () => linkMeter.rate(), ...(onLevelChange ? { onChange: onLevelChange } : {}) })
      : validateZstdLevel(setting);
  return { pool, level, linkMeter, close: () => pool.close() };
}
