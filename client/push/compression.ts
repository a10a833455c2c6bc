/**
 * `--compress auto|none|1..19` for one push: the worker pool every snapshot of the push compresses on, the level
 * (fixed, or chosen frame by frame from what the link and the workers measure), and the link meter that feeds it.
 */
import { CompressionPool, validateZstdLevel, type LevelChooser } from '../../core/wire/index.ts';
import { AutoLevel } from './auto-level.ts';
import { LinkMeter } from '../upload/link-meter.ts';
import { RawPace } from './raw-pace.ts';

import type { CompressSetting } from './compress-setting.ts';

export { CompressSettingError, parseCompressSetting, type CompressSetting } from './compress-setting.ts';

export interface Compression {
  pool: CompressionPool;
  level: number | LevelChooser;
  linkMeter: LinkMeter;
  /** The raw rate with and without compression, which `--compress auto` weighs on a fast line: fed by the upload's progress. */
  rawPace: RawPace;
  close(): Promise<void>;
}

export function startCompression(setting: CompressSetting, onLevelChange?: (level: number, why: string) => void): Compression {
  const pool = new CompressionPool();
  const linkMeter = new LinkMeter();
  const rawPace = new RawPace();
  const level =
    setting === 'auto'
      ? new AutoLevel({ workers: pool.size, linkRate: () => linkMeter.rate(), linkAtLeast: () => linkMeter.atLeast(), pace: rawPace, ...(onLevelChange ? { onChange: onLevelChange } : {}) })
      : validateZstdLevel(setting);
  return { pool, level, linkMeter, rawPace, close: () => pool.close() };
}
