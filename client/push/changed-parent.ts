/**
 * What a push does when the server refuses an incremental because its parent changed on this machine after it was
 * sent (`parent_changed`, server/stream-start.ts): made writable, written to, made read-only again. btrfs send
 * describes the snapshot as changes from the parent as it is now, the server holds it as it was sent, so that parent
 * can never be one again. The push plans the step again without it (an older snapshot both sides hold, or in full:
 * core/plan.ts `changedParents`), says so in one line, and sends; later pushes learn it from the failed transfer the
 * server keeps, so that they do not try it again (and do not abort an upload in progress that went around it).
 */
import type { PlanStep } from '../../core/plan.ts';
import type { Transfer } from '../../core/protocol.ts';

export const PARENT_CHANGED = 'parent_changed';

/** Pure: the parents the server refused as changed here, by their failed transfers in `volume`. */
export function changedParentsOf(transfers: readonly Transfer[], volume: string): Set<string> {
  const changed = new Set<string>();
  for (const t of transfers) {
    if (t.volume === volume && t.state === 'failed' && t.error?.code === PARENT_CHANGED && t.parentUuid !== null) changed.add(t.parentUuid);
  }
  return changed;
}

/** Pure: the one line a push says when it sends `was` again as `now`, around its changed parent. */
export function aroundChangedNote(was: PlanStep, now: PlanStep): string {
  const parent = was.parent?.name ?? 'its parent';
  const instead = now.parent ? `sending it on ${now.parent.name} instead` : 'sending it in full instead';
  return (
    `${was.snapshot.name}: not sent on ${parent}: ${parent} on this machine was changed after it was sent, and an incremental on ` +
    `it would leave the server's copy different (parent_changed); ${instead}`
  );
}
