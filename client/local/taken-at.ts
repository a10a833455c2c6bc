/**
 * When a local snapshot was taken, as retention and every "newest" count it, on this side and on the server.
 *
 * The time a snapshot's maker wrote down wins: the time in its name (btrbk's `NAME.YYYYMMDD[Thhmm[ss]]`, ours
 * `NAME.YYYYMMDDThhmmssZ`, core/snapshot-name.ts) or snapper's info.xml <date>. btrfs's own Creation time (otime)
 * comes second, when nothing else says, because it is not always the time the data is from:
 * - a snapshot that was itself received (btrbk's target chains, a restore, a copy moved between disks) has the time
 *   of that receive as its otime;
 * - a snapshot of a snapshot (say to make a read-only copy writable and back) has a new otime;
 * - nobody can set an otime by hand, so a backlog taken with older names (a seed, a migration) would otherwise all
 *   fall on the day it was copied, and retention would keep one of it.
 * The name's time is what btrbk users already rely on: btrbk's own retention reads it. The otime travels too, as
 * createdAt, so the server and the API still show when this subvolume was made.
 *
 * A received snapshot whose name and info.xml say nothing has no time: its otime is the receive, and btrfs keeps
 * nothing of the original's (its Send time is the receive's too). Dated by the receive, a snapshot restored from the
 * server today would be the newest of all, and push would skip the newer snapshots the server lacks. The server's
 * catalog still knows when it was taken, where it holds it (core/taken-order.ts).
 */
import { parseNameTime } from '../../core/snapshot-name.ts';

export type TimeSource = 'name' | 'info.xml' | 'creation time';

export interface SnapshotTimes {
  time: Date | null;
  from: TimeSource | null;
  created: Date | null;
}

/**
 * Pure: the name's time (read in this machine's time zone when the name has none), else snapper's, else otime unless
 * the snapshot was `received` (its otime is the receive).
 */
export function snapshotTimes(name: string, created: Date | null, snapperDate: Date | null = null, received = false): SnapshotTimes {
  const named = parseNameTime(name, 'local');
  if (named) return { time: named.time, from: 'name', created };
  if (snapperDate) return { time: snapperDate, from: 'info.xml', created };
  if (received) return { time: null, from: null, created };
  return { time: created, from: created ? 'creation time' : null, created };
}
