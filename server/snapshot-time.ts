/**
 * When a received snapshot was taken, as the server's retention and every "newest" (listings, the API's `newest`,
 * metrics) count it. Never the time it arrived, where anything better is known: a backlog arrives in one go.
 *
 * - `takenAt`, sent by the client with the upload (META.takenAt; client/local/taken-at.ts chose it).
 * - Catalogued before clients sent it: the time in its name (ours or btrbk's, core/snapshot-name.ts), read as UTC,
 *   since a zone-less btrbk name is in the client's local time, which the server does not know (hours off at most,
 *   and a later push from an upgraded client carries the exact time).
 * - Neither when it lies after now (by more than FUTURE_SLACK_MS): no snapshot is taken in the future.
 * - Else when it was received (receivedAt), as before. Not the received subvolume's own btrfs Creation time: on this
 *   side that is the time of `btrfs receive`, the same as receivedAt, never when the original was taken.
 */
import { ValidationError } from '../core/errors.ts';
import { parseNameTime } from '../core/snapshot-name.ts';
import { FUTURE_SLACK_MS } from '../core/taken-order.ts';
import type { Snapshot } from '../core/protocol.ts';

/** `future`: dated by its arrival because the time it came with (its client's or its name's) lies after now. */
export type DatedFrom = 'client' | 'name' | 'future' | 'arrival';

type Dateable = Pick<Snapshot, 'name' | 'receivedAt'> & Partial<Pick<Snapshot, 'takenAt'>>;

export function snapshotDating(s: Dateable, now = new Date()): { time: Date; from: DatedFrom } {
  const arrived = new Date(s.receivedAt);
  // A time after now (by more than a zone's hours) is not when it was taken: a name typed by hand, a clock that was
  // wrong, or a client older than the one that sends the time it believes (core/taken-order.ts, the same rule).
  // Believed, one named 2030 would be the newest, kept by retention until 2030.
  const believable = (time: Date): boolean => time.getTime() <= now.getTime() + FUTURE_SLACK_MS;
  if (s.takenAt && believable(new Date(s.takenAt))) return { time: new Date(s.takenAt), from: 'client' };
  const named = parseNameTime(s.name, 'utc');
  if (named && believable(named.time)) return { time: named.time, from: 'name' };
  return { time: arrived, from: s.takenAt || named ? 'future' : 'arrival' };
}

export function snapshotTime(s: Dateable, now = new Date()): Date {
  return snapshotDating(s, now).time;
}

/** Oldest first by when they were taken; arrival breaks ties. */
export function byTaken(a: Dateable, b: Dateable): number {
  return snapshotTime(a).getTime() - snapshotTime(b).getTime() || a.receivedAt.localeCompare(b.receivedAt);
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z$/;

/**
 * An upload's time metadata (META.createdAt, META.takenAt): absent is null (an older client); anything else must be
 * an ISO 8601 UTC time that exists (as Date#toISOString writes it), or the upload is refused before it begins.
 */
export function parseTimeMetadata(raw: string | null | undefined, key: string): string | null {
  if (raw === undefined || raw === null || raw === '') return null;
  const time = ISO_UTC.test(raw) ? new Date(raw) : null;
  if (time === null || Number.isNaN(time.getTime()) || time.toISOString().slice(0, 19) !== raw.slice(0, 19)) {
    throw new ValidationError(
      `upload metadata ${key} is ${JSON.stringify(raw.slice(0, 40))}, not a time in ISO 8601 UTC (e.g. 2026-11-01T01:00:00.000Z); upgrade the client, or report this`,
      { details: { [key]: raw.slice(0, 40) } },
    );
  }
  return time.toISOString();
}
