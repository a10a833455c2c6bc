/**
 * The names `snapferry snapshot` gives: `<volume>.<YYYYMMDDTHHMMSSZ>`, the time in UTC, so that names sort by age,
 * say when they were taken whatever the machine's time zone, and carry that time to the server (whose retention
 * reads it from the name: the time a snapshot was received says nothing about when it was taken).
 */
import { parseName, type SafeName } from './names.ts';

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

export function snapshotName(volume: string, time: Date): SafeName {
  return parseName(`${volume}.${formatStamp(time)}`, 'snapshot name');
}

/** The volume prefix and the time of a name in our format, or null for any other name. */
export function parseSnapshotName(name: string): { prefix: string; time: Date } | null {
  const m = NAME_RE.exec(name);
  const time = m ? parseStamp(m[2]!) : null;
  return m && time ? { prefix: m[1]!, time } : null;
}
