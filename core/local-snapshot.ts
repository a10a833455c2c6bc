/** A snapshot on the client's filesystem, as the planners (core/plan.ts, core/sources.ts) see it. */
export interface LocalSnapshot {
  name: string;
  path: string;
  /** Its identity in send streams and on the server: its Received UUID if it was received, else its own UUID. */
  uuid: string;
  /** Its own UUID on this filesystem (btrfs "UUID"), which the Parent UUID of a snapshot of it names. */
  localUuid: string;
  /** The UUID of the subvolume this is a snapshot of (btrfs "Parent UUID"): snapshots of one source share it. */
  origin: string | null;
  /**
   * btrfs "Gen at creation": when this subvolume was made on this filesystem. Not its age as a snapshot of its source:
   * a receive (a restore) makes it anew. core/taken-order.ts orders by `time` and uses this only to break ties.
   */
  generation: number;
  /** btrfs "Creation time" (otime) of this subvolume; null where btrfs has none. */
  created: Date | null;
  /**
   * When the snapshot was taken, as retention and "newest" count it (client/local/taken-at.ts: the time its name or
   * snapper's info.xml gives, else `created` unless it was received); null when nothing here says.
   */
  time: Date | null;
}
