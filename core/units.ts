/**
 * Sizes ("200k", "500G") and durations ("90s", "1h", "7d", "1h30m") as people write them on the command line and
 * in config files. Sizes are binary (k = 1024), as `btrfs` and `du -h` count them; durations come out in ms.
 */
import { ValidationError } from './errors.ts';

const SIZE_UNITS = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 } as const;
// A unit may carry an optional "i" and "B" (4M, 4MiB, 4MB all mean 4 * 2^20); a fraction needs a unit (1.5G).
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$/i;

export const SIZE_EXAMPLE = 'a size like 4M, 200k, 500G or 1048576';

/** The largest size a count of bytes holds exactly (2^53 - 1), as people read it. */
export const MAX_SIZE_TEXT = '8P';

/** A size written right that no count of bytes holds: said as too large, not as written wrong. */
export class SizeTooLarge extends ValidationError {
  constructor(value: string) {
    super(`${JSON.stringify(value)} is too large a size: at most ${MAX_SIZE_TEXT}`, { details: { value } });
  }
}

/** Bytes, a whole number; throws ValidationError on anything else (SizeTooLarge for one written right but too large). */
export function parseSize(value: string): number {
  const m = SIZE_RE.exec(value.trim());
  const unit = m?.[2]?.toLowerCase() as keyof typeof SIZE_UNITS | undefined;
  if (!m || unit === undefined || (unit === '' && m[1]!.includes('.'))) {
    throw new ValidationError(`expected ${SIZE_EXAMPLE}, got ${JSON.stringify(value)}`, { details: { value } });
  }
  const bytes = Math.floor(Number(m[1]) * SIZE_UNITS[unit]);
  if (!Number.isSafeInteger(bytes)) throw new SizeTooLarge(value);
  return bytes;
}

/** A timeout's lower bound: 0 would turn it off (Node's, or the socket's), and less would cut healthy lines. */
export const MIN_TIMEOUT_MS = 1000;
/**
 * A timeout's upper bound. Every timeout ends up in a Node timer (setTimeout, a socket's or a server's timeout), which
 * holds at most 2^31-1 ms (24.8 days): a longer one is set to 1 ms with a TimeoutOverflowWarning, so `--stall-timeout
 * 25d` cut every request at once. A whole number of days under that limit is one a person can say back.
 */
export const MAX_TIMEOUT_MS = 24 * 86_400_000;
export const TIMEOUT_EXAMPLE = 'a duration of at least 1s and at most 24d, like 30s or 2m';

const DURATION_UNITS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const;
const DURATION_RE = /^(?:\d+[smhdw])+$/i;
const DURATION_PART = /(\d+)([smhdw])/gi;

export const DURATION_EXAMPLE = 'a duration like 90s, 30m, 1h, 1h30m, 7d or 2w';

/**
 * Milliseconds. A bare number is refused: "7" could be seconds, minutes or days, and a retention or expiry set a
 * thousand times too short deletes things.
 */
export function parseDuration(value: string): number {
  const text = value.trim();
  if (!DURATION_RE.test(text)) {
    throw new ValidationError(`expected ${DURATION_EXAMPLE}, got ${JSON.stringify(value)}`, { details: { value } });
  }
  let ms = 0;
  for (const [, n, unit] of text.matchAll(DURATION_PART)) {
    ms += Number(n) * DURATION_UNITS[unit!.toLowerCase() as keyof typeof DURATION_UNITS];
  }
  if (!Number.isSafeInteger(ms)) throw new ValidationError(`${JSON.stringify(value)} is too long a duration`, { details: { value } });
  return ms;
}

/**
 * A timeout (--stall-timeout, --idle-timeout, and their config keys): a duration of at least MIN_TIMEOUT_MS and at
 * most MAX_TIMEOUT_MS. The one check for flag and config alike: `stallTimeout: 0s` in a config was taken while
 * `--stall-timeout 0s` was refused.
 */
export function parseTimeout(value: string): number {
  const ms = parseDuration(value);
  if (ms < MIN_TIMEOUT_MS) throw new ValidationError(`expected ${TIMEOUT_EXAMPLE}, got ${JSON.stringify(value)}`, { details: { value } });
  if (ms > MAX_TIMEOUT_MS) {
    throw new ValidationError(`${JSON.stringify(value)} is too long a timeout: at most 24d (a timer holds up to 2^31-1 ms, 24.8 days)`, { details: { value, maxMs: MAX_TIMEOUT_MS } });
  }
  return ms;
}
