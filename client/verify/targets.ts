/**
 * Which snapshots a verify checks: local read-only snapshots paired with the server's copies by identity (the UUID
 * btrfs send puts in the stream, which the server's catalog lists as `uuid`). Pure: the local snapshots and the
 * server's list come in, the pairs go out.
 */
import { SnapferryError } from '../../core/errors.ts';
import type { LocalSnapshot } from '../../core/plan.ts';
import type { Snapshot } from '../../core/protocol.ts';
import { takenOrder } from '../../core/taken-order.ts';

export interface VerifyTarget {
  /** The local read-only snapshot. */
  local: LocalSnapshot;
  /** The server's copy of it. */
  server: Snapshot;
}

export class VerifyTargetError extends SnapferryError {}

/**
 * `named`: snapshots the user named one by one; each must be on the server. `found`: snapshots found in folders (or
 * the config's snapshotDir): the newest of them the server holds. `sample`: that many more, older ones, chosen by
 * `rotation` (a run's counter) so that successive runs go round all of them.
 */
export function chooseTargets(input: { named: readonly LocalSnapshot[]; found: readonly LocalSnapshot[]; server: readonly Snapshot[]; volume: string; sample?: number; rotation?: number }): VerifyTarget[] {
  const byUuid = new Map(input.server.map((s) => [s.uuid, s]));
  const out: VerifyTarget[] = [];
  for (const local of input.named) {
    const server = byUuid.get(local.uuid);
    if (!server) {
      throw new VerifyTargetError('snapshot_not_on_server', `${local.path} is not on the server in volume ${input.volume} (no snapshot there has its UUID ${local.uuid}): push it first`, {
        details: { path: local.path, uuid: local.uuid, volume: input.volume },
      });
    }
    out.push({ local, server });
  }
  const held = input.found.filter((l) => byUuid.has(l.uuid));
  // Newest first by when each was taken (core/taken-order.ts): an old snapshot restored here is not the newest.
  const byAge = takenOrder(held, input.server);
  const both = held
    .sort((a, b) => byAge(b, a))
    .map((local) => ({ local, server: byUuid.get(local.uuid)! }));
  if (input.found.length > 0 && both.length === 0) {
    throw new VerifyTargetError('snapshot_not_on_server', `none of the ${input.found.length} local snapshots of ${input.volume} is on the server: push first`, {
      details: { volume: input.volume },
    });
  }
  if (both.length > 0) out.push(both[0]!);
  // Oldest first: a new snapshot joins at the end, so the counter's next position is one not checked lately.
  const older = both.slice(1).reverse();
  const sample = Math.min(input.sample ?? 0, older.length);
  const start = older.length === 0 ? 0 : (input.rotation ?? 0) % older.length;
  for (let i = 0; i < sample; i++) out.push(older[(start + i) % older.length]!);
  return out;
}
