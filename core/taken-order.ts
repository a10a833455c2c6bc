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
 */
import type { LocalSnapshot } from './local-snapshot.ts';

type Ordered = Pick<LocalSnapshot, 'uuid' | 'name' | 'generation' | 'time'>;

/** A snapshot the server holds, with the takenAt its catalog keeps (null or absent: catalogued before clients sent it). */
export interface ServerTakenAt {
  uuid: string;
  takenAt?: string | null;
}

export type AgeOrder = (a: Ordered, b: Ordered) => number;

/**
 * A comparator, oldest first, for `snapshots` (and any subset of them): by the time each was taken (its own `time`,
 * else the server's takenAt for it); then by generation, which orders two taken in the same second (or minute, for
 * btrbk's names) as btrfs made them; then by name.
 *
 * When any of `snapshots` has no time at all (btrfs without Creation times, a received snapshot the server does not
 * hold, named without one), all go by generation, as before snapshot times: a mixed order (time where both have one,
 * generation otherwise) is not an order at all (a < b < c < a happens), and sort() would give any answer.
 */
export function takenOrder(snapshots: readonly Ordered[], server: readonly ServerTakenAt[] = []): AgeOrder {
  const held = new Map<string, Date>();
  for (const s of server) {
    const at = s.takenAt ? new Date(s.takenAt) : null;
    if (at && !Number.isNaN(at.getTime())) held.set(s.uuid, at);
  }
  const taken = (s: Ordered): Date | null => s.time ?? held.get(s.uuid) ?? null;
  const byGeneration = (a: Ordered, b: Ordered) => a.generation - b.generation || a.name.localeCompare(b.name);
  if (!snapshots.every((s) => taken(s) !== null)) return byGeneration;
  return (a, b) => {
    const [ta, tb] = [taken(a), taken(b)];
    // A snapshot outside the set it was made for has no time: generation is all that both have.
    if (ta === null || tb === null) return byGeneration(a, b);
    return ta.getTime() - tb.getTime() || byGeneration(a, b);
  };
}
