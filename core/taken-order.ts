/**
 * The order of a source's snapshots by age: when each was taken, as README "Snapshot times" defines it. Pure. Every
 * "newest", "older than" and "newest common" on the client goes by this order (core/plan.ts, core/sources.ts,
 * `status`, `verify`).
 *
 * Not by btrfs generation ("Gen at creation"): that is when the subvolume was made on this filesystem, and a receive
 * makes it anew. A snapshot restored from the server, or received from another disk, gets the filesystem's current
 * generation, so by generation an old snapshot restored today is the newest of all: a push then skipped the newer
 * snapshots the server lacked and chose the restored one as parent.
 *
 * Nor by btrfs's own times on a received snapshot: its Creation time is the receive, and so is its Send time (btrfs
 * receive sets no stime; `btrfs subvolume show` prints the receive's); its Send transid is a generation of the
 * sender's filesystem. btrfs keeps nothing of when a received snapshot was taken. The gatherer
 * (client/local/snapshots.ts) leaves `time` null for one whose name and info.xml say nothing; the server's catalog,
 * which kept the takenAt the snapshot was first pushed with, fills it in where it holds the snapshot.
 *
 * A time that cannot be when the snapshot was taken is not used: one after now, or after btrfs made the subvolume
 * (its Creation time), by more than FUTURE_SLACK_MS. Such a name was typed by hand or taken while the clock was
 * wrong; trusted, one snapshot named 2030 would be "the newest" until 2030: push would skip every real snapshot as
 * older than it, `snapshot` would find none due, prune would count the real ones as older than the parent. Instead
 * the snapshot is dated by its Creation time, which btrfs set when it was made (unless that is in the future too, or
 * it was received: then it has no time, and the rule below orders by generation). Every user of the order (plan,
 * prune, snapshot, status, verify) goes through takenTime, so they all agree on it; misdated() names them for notes.
 *
 * Generation still says one thing for certain: a snapshot btrfs made here (not received) after another subvolume was
 * taken after that one. So such a snapshot is never older than one of lower generation, whatever its time says
 * (madeAfterOthers): after a clock was set back, new snapshots are named in the past, and by time alone push skipped
 * them for ever as older than the server's newest. madeAfter() names them for notes.
 */
import type { LocalSnapshot } from './local-snapshot.ts';

type Ordered = Pick<LocalSnapshot, 'uuid' | 'name' | 'generation' | 'time'> & Partial<Pick<LocalSnapshot, 'created' | 'localUuid'>>;

/**
 * How far after now (or after its Creation time) a snapshot's time may lie and still be believed: a day. btrbk's
 * zone-less names are read in this machine's zone, which may not be the zone they were written in (a laptop that
 * travelled, a container in UTC): up to 14 hours off; clocks of machines without NTP drift by minutes. A clock that
 * is wrong enough to matter (an RTC reset, a mistyped year) is off by far more. And a day is short enough that a
 * snapshot inside it holds nothing up for longer than that.
 */
export const FUTURE_SLACK_MS = 24 * 3_600_000;

const beyondSlack = (time: Date, limit: Date): boolean => time.getTime() > limit.getTime() + FUTURE_SLACK_MS;

/** Whether `s` was received (a restore, a copy): its Creation time is the receive's, not when it was taken. */
const received = (s: Ordered): boolean => s.localUuid !== undefined && s.localUuid !== s.uuid;

/**
 * When `s` was taken, as far as this machine can tell (see the comment at the top): its own time unless that lies
 * after now or after its Creation time; then its Creation time, unless it was received or that too is after now.
 */
export function takenTime(s: Ordered, now: Date): Date | null {
  const created = s.created ?? null;
  if (s.time === null) return null;
  if (!beyondSlack(s.time, now) && !(created !== null && beyondSlack(s.time, created))) return s.time;
  return created !== null && !received(s) && !beyondSlack(created, now) ? created : null;
}

export interface Misdated {
  name: string;
  /** The time its name (or info.xml) gives. */
  time: Date;
  /** What it counts as instead (takenTime); null: no time, so generation orders. */
  instead: Date | null;
}

/** The snapshots whose own time takenTime does not believe: for a note that tells the user to fix the name. */
export function misdated(snapshots: readonly Ordered[], now: Date): Misdated[] {
  return snapshots
    .filter((s) => s.time !== null && takenTime(s, now) !== s.time)
    .map((s) => ({ name: s.name, time: s.time!, instead: takenTime(s, now) }));
}

export function misdatedNote(m: Misdated): string {
  const instead = m.instead ? `counted as taken when btrfs made it, ${m.instead.toISOString()}` : 'counted by btrfs generation';
  return (
    `${m.name} is dated ${m.time.toISOString()}, which is after now or after btrfs made it (is a clock wrong?); ${instead}. ` +
    'Rename it (mv) to the time it was taken'
  );
}

/** A snapshot the server holds, with the takenAt its catalog keeps (null or absent: catalogued before clients sent it). */
export interface ServerTakenAt {
  uuid: string;
  takenAt?: string | null;
}

export type AgeOrder = (a: Ordered, b: Ordered) => number;

/**
 * A snapshot btrfs made here whose time puts it before a snapshot that btrfs already had here when it made it: the
 * clock was set back (a dead RTC battery) or the name is wrong. It counts as taken at `at`, the time of `after`.
 */
export interface MadeAfter {
  name: string;
  /** Its own time (takenTime, else the server's takenAt). */
  time: Date;
  /** The newest (by time) of the snapshots btrfs had here before it. */
  after: string;
  at: Date;
}

/**
 * The facts of an order: each snapshot's time (its own, believed, else the server's takenAt), whether all have one,
 * and which were made after a snapshot their time puts them before (by local UUID: one subvolume, whichever object
 * stands for it).
 */
function ages(snapshots: readonly Ordered[], server: readonly ServerTakenAt[], now: Date) {
  const held = new Map<string, Date>();
  for (const s of server) {
    const at = s.takenAt ? new Date(s.takenAt) : null;
    if (at && !Number.isNaN(at.getTime()) && !beyondSlack(at, now)) held.set(s.uuid, at);
  }
  const own = new Map(snapshots.map((s) => [s, takenTime(s, now)]));
  const taken = (s: Ordered): Date | null => (own.has(s) ? own.get(s)! : takenTime(s, now)) ?? held.get(s.uuid) ?? null;
  const timed = snapshots.every((s) => taken(s) !== null);
  return { taken, timed, madeAfter: timed ? madeAfterOthers(snapshots, taken) : new Map<string, MadeAfter>() };
}

/**
 * The rule for a clock set back. Generation orders what btrfs made on one filesystem, and a snapshot made here by
 * `btrfs subvolume snapshot` (not received: its identity is its own UUID) was taken when it was made; so it was taken
 * after every snapshot of lower generation here: after each one made here before it, and after each one received
 * here before it, which was taken before it arrived. Whatever its time says, it is no older than the newest of them,
 * and counts as taken then (generation then puts it after that one). Times and generations agree in the main; they
 * disagree where a clock was set back (new snapshots named and dated in the past): trusted, such a snapshot looked
 * older than the newest the server holds, and push skipped it for ever. A received snapshot's generation is its
 * arrival, not when it was taken (an old snapshot restored today), so its own age is never moved by this.
 */
function madeAfterOthers(snapshots: readonly Ordered[], taken: (s: Ordered) => Date | null): Map<string, MadeAfter> {
  const out = new Map<string, MadeAfter>();
  const byGeneration = [...snapshots].sort((a, b) => a.generation - b.generation);
  let newest: Ordered | null = null;
  let lower: Ordered | null = null; // the newest by time among those of a lower generation than the current one
  for (let i = 0; i < byGeneration.length; i++) {
    const s = byGeneration[i]!;
    if (i > 0 && byGeneration[i - 1]!.generation < s.generation) lower = newest;
    const time = taken(s)!;
    if (lower !== null && s.localUuid !== undefined && !received(s) && time.getTime() < taken(lower)!.getTime()) {
      out.set(s.localUuid, { name: s.name, time, after: lower.name, at: taken(lower)! });
    }
    if (newest === null || taken(newest)!.getTime() < time.getTime()) newest = s;
  }
  return out;
}

/**
 * A comparator, oldest first, for `snapshots` (and any subset of them): by the time each was taken (takenTime, else
 * the server's takenAt for it, each believed only up to FUTURE_SLACK_MS after `now`), a snapshot made here never
 * before one btrfs had here before it (madeAfterOthers); then by generation, which orders two taken in the same second
 * (or minute, for btrbk's names) as btrfs made them; then by name.
 *
 * When any of `snapshots` has no time at all (btrfs without Creation times, a received snapshot the server does not
 * hold, named without one), all go by generation, as before snapshot times: a mixed order (time where both have one,
 * generation otherwise) is not an order at all (a < b < c < a happens), and sort() would give any answer.
 */
export function takenOrder(snapshots: readonly Ordered[], server: readonly ServerTakenAt[] = [], now: Date = new Date()): AgeOrder {
  const { taken, timed, madeAfter } = ages(snapshots, server, now);
  const byGeneration = (a: Ordered, b: Ordered) => a.generation - b.generation || a.name.localeCompare(b.name);
  if (!timed) return byGeneration;
  const age = (s: Ordered): Date | null => (s.localUuid === undefined ? undefined : madeAfter.get(s.localUuid)?.at) ?? taken(s);
  return (a, b) => {
    const [ta, tb] = [age(a), age(b)];
    // A snapshot outside the set it was made for has no time: generation is all that both have.
    if (ta === null || tb === null) return byGeneration(a, b);
    return ta.getTime() - tb.getTime() || byGeneration(a, b);
  };
}

/** The snapshots of `snapshots` takenOrder counts as newer than their time says (madeAfterOthers), for notes. */
export function madeAfter(snapshots: readonly Ordered[], server: readonly ServerTakenAt[] = [], now: Date = new Date()): MadeAfter[] {
  return [...ages(snapshots, server, now).madeAfter.values()];
}

export function madeAfterNote(m: MadeAfter): string {
  return (
    `${m.name} is dated ${m.time.toISOString()}, before ${m.after} (${m.at.toISOString()}), but btrfs made it after that one: ` +
    'was the clock set back? It counts as newer than every snapshot btrfs made or received here before it. Check the clock (NTP, the RTC battery)'
  );
}
