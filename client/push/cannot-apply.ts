/**
 * What a push says when the server could not apply a snapshot's stream (sendstream_cannot_apply,
 * core/btrfs/receive-failure.ts): the stream names a path that the snapshot it builds does not have. For an
 * incremental, the likeliest cause is on this machine: its parent was changed after it was sent (made writable, a
 * file written, made read-only again), so `btrfs send` describes the change from a parent the server never got. The
 * server refuses most of those at frame 0 already (parent_changed, client/push/changed-parent.ts, which push goes
 * around by itself); what reaches this is a parent whose change the server cannot see (a received copy here).
 * Sending again makes the same stream, and the server does not try again, so the push says what will go through.
 */
import type { PlanStep } from '../../core/plan.ts';

export const CANNOT_APPLY = 'sendstream_cannot_apply';

/**
 * Pure: the sentences that follow the server's reason. The plan takes only read-only snapshots as parents
 * (client/local/snapshots.ts findParentCandidates), so a parent made writable, or deleted, is passed over: the next
 * push builds on an older snapshot both sides hold, or sends in full.
 */
export function cannotApplyAdvice(step: PlanStep, transferId: string): string {
  const { snapshot, parent } = step;
  // A failed transfer keeps its spool (it counts against the quota) until it expires.
  const spool = `(the server keeps its spool until it expires: snapferry abort ${transferId} deletes it now)`;
  if (parent === null) {
    return (
      `Nothing of ${snapshot.name} was received and the server does not try again ${spool}. Sent again, it is the same ` +
      'stream: btrfs send on this machine made a stream that does not describe the snapshot'
    );
  }
  return (
    `${snapshot.name} is an incremental on ${parent.name}, and ${parent.name} on this machine differs from the server's copy of it: ` +
    'most likely it was changed after it was sent (made writable, written to, made read-only again). Nothing was received, ' +
    `and the server does not try again ${spool}. Take ${parent.name} out of the way and push again: make it writable ` +
    `(btrfs property set -ts ${parent.path} ro false) or delete it; push builds only on read-only snapshots, so it then sends ` +
    `${snapshot.name} from an older snapshot the server holds, or in full`
  );
}
