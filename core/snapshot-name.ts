/**
 * The names `snapferry snapshot` gives: `<volume>.<YYYYMMDDTHHMMSSZ>`, the time in UTC, so that names sort by age,
 * say when they were taken whatever the machine's time zone, and carry that time to the server (whose retention
 * reads it from the name: the time a snapshot was received says nothing about when it was taken).
 */
import { ValidationError } from './errors.ts';
import { MAX_NAME_LENGTH, parseName, preview, type SafeName } from './names.ts';

const STAMP_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const NAME_RE = /^(.+)\.(\d{8}T\d{6}Z)$/;

/** 20261125T013000Z: ISO 8601 basic format, to the second. */
export function formatStamp(time: Date): string {
  return time.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

export function parseStamp(stamp: string): Date | null {
  const m = STAMP_RE.exec(stamp);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const time = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  // Date.UTC rolls 20260231 over into March: only a stamp that formats back to itself is a real time.
  return formatStamp(time) === stamp ? time : null;
}

/** The part snapshotName adds after the volume: a dot and a stamp, 17 characters. */
const SUFFIX_LENGTH = `.${formatStamp(new Date(0))}`.length;

/**
 * The longest volume name whose snapshots' names (`<volume>.<stamp>`) still fit btrfs's 255: a longer one passed as a
 * name and then made every snapshot of it fail.
 */
export const MAX_VOLUME_LENGTH = MAX_NAME_LENGTH - SUFFIX_LENGTH;

export const VOLUME_LENGTH_RULE = `at most ${MAX_VOLUME_LENGTH} characters, so that its snapshots' names (<volume>.YYYYMMDDTHHMMSSZ) fit btrfs's ${MAX_NAME_LENGTH}`;

/** A volume name as a person gives it (--volume, a config's volumes), refused where its snapshots could not be named. */
export function parseVolumeName(value: unknown): SafeName {
  const name = parseName(value, 'volume');
  if (name.length > MAX_VOLUME_LENGTH) {
    throw new ValidationError(`volume ${preview(name)} is ${name.length} characters long: a volume name has ${VOLUME_LENGTH_RULE}`, {
      details: { field: 'volume', length: name.length, max: MAX_VOLUME_LENGTH },
    });
  }
  return name;
}

export function snapshotName(volume: string, time: Date): SafeName {
  return parseName(`${volume}.${formatStamp(time)}`, 'snapshot name');
}

/** The volume prefix and the time of a name in our format, or null for any other name. */
export function parseSnapshotName(name: string): { prefix: string; time: Date } | null {
  const m = NAME_RE.exec(name);
  const time = m ? parseStamp(m[2]!) : null;
  return m && time ? { prefix: m[1]!, time } : null;
}

/**
 * btrbk's names (btrbk.conf(5), timestamp_format): `NAME.YYYYMMDD` (short), `NAME.YYYYMMDDThhmm` (long, the
 * default), `NAME.YYYYMMDDThhmmss+hhmm` (long-iso), each with `_N` when two fall in one minute; and ours,
 * `NAME.YYYYMMDDThhmmssZ`. The zone-less forms are the local time of the machine that took them (btrbk uses
 * localtime), so only that machine can read them into an instant: the client does, with `zone: 'local'`.
 */
const TIMED_NAME_RE = /^(.+)\.(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(?:(\d{2})(Z|[+-]\d{4})?)?)?(?:_\d+)?$/;

export interface NameTime {
  /** The source's name: btrbk's NAME, our volume. */
  prefix: string;
  time: Date;
}

/** The prefix and time of a btrbk-style or snapferry name; null for any other name or an impossible date. */
export function parseNameTime(name: string, zone: 'local' | 'utc'): NameTime | null {
  const m = TIMED_NAME_RE.exec(name);
  if (!m) return null;
  const [y, mo, d, h = 0, mi = 0, s = 0] = m.slice(2, 8).map((x) => (x === undefined ? undefined : Number(x))) as number[];
  const offset = m[8];
  let time: Date;
  if (offset !== undefined || zone === 'utc') {
    const minutes = offset === undefined || offset === 'Z' ? 0 : (offset[0] === '-' ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(3)));
    time = new Date(Date.UTC(y!, mo! - 1, d!, h, mi, s) - minutes * 60_000);
    // Date.UTC rolls 20260231 over into March: only fields that come back out as they went in are a real time.
    const check = new Date(time.getTime() + minutes * 60_000);
    if (check.getUTCMonth() !== mo! - 1 || check.getUTCDate() !== d || check.getUTCHours() !== h || check.getUTCMinutes() !== mi || check.getUTCSeconds() !== s) return null;
  } else {
    time = new Date(y!, mo! - 1, d!, h, mi, s);
    if (time.getMonth() !== mo! - 1 || time.getDate() !== d || time.getHours() !== h || time.getMinutes() !== mi || time.getSeconds() !== s) return null;
  }
  return { prefix: m[1]!, time };
}
