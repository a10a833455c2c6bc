/**
 * `snapferry prune`: applies a volume's retention policy (core/retention.ts) to its local snapshots
 * (client/local/take.ts), never deleting what the chain to the server still needs. It asks the server first and
 * prunes nothing when it cannot: only the server knows which snapshot the next incremental can start from.
 *
 * Always kept, whatever the policy says:
 * - the newest snapshot that both sides hold (the server's snapshots carry our UUID as their Received UUID): the
 *   parent of the next incremental; without it the next push would be a full one;
 * - every snapshot newer than that one: not on the server yet;
 * - the snapshot an upload in progress sends, and the parent it sends it from: a resume runs the same btrfs send.
 */
import * as btrfs from '../../core/btrfs/index.ts';
import { describeError } from '../../core/errors.ts';
import { planRetention, type RetentionPlan } from '../../core/retention.ts';
import { prunes, type RetentionPolicy } from '../../core/retention-policy.ts';
import { inProgress, type SnapshotList, type Transfer } from '../../core/protocol.ts';
import type { ServerApi } from '../http/api.ts';
import { listOwnSnapshots, type OwnSnapshot } from '../local/take.ts';


export interface PruneSettings {
  snapshotDir: string;
  retention?: RetentionPolicy;
}

export interface PruneOptions {
  dryRun?: boolean;
  now?: Date;
  signal?: AbortSignal;
}

export interface PruneOutcome {
  plan: RetentionPlan;
  /** Deleted (with dryRun: would be deleted). */
  deleted: string[];
  failed: { name: string; error: string }[];
}

/** Which of `own` must stay, and why (pure; see the comment at the top). `own` is oldest first. */
export function localProtections(own: readonly OwnSnapshot[], server: Pick<SnapshotList, 'snapshots'>, transfers: readonly Transfer[], volume: string): Map<string, string> {
  const protect = new Map<string, string>();
  const add = (name: string, reason: string) => protect.set(name, protect.has(name) ? `${protect.get(name)}; ${reason}` : reason);
  const held = new Set(server.snapshots.map((s) => s.uuid));
  const newestCommon = own.findLastIndex((s) => held.has(s.uuid));
  if (newestCommon >= 0) add(own[newestCommon]!.name, 'newest snapshot both sides hold: the parent of the next incremental');
  for (const s of own.slice(newestCommon + 1)) add(s.name, 'not on the server yet');
  for (const t of transfers.filter((x) => x.volume === volume && inProgress(x.state))) {
    for (const s of own) {
      if (s.uuid === t.uuid) add(s.name, `being sent (transfer ${t.id}, ${t.state})`);
      if (s.uuid === t.parentUuid) add(s.name, `parent of transfer ${t.id} in progress (${t.state})`);
    }
  }
  return protect;
}

/** Plans and (unless dryRun) deletes; throws, deleting nothing, when the server cannot be asked. */
export async function pruneLocal(api: ServerApi, volume: string, settings: PruneSettings, options: PruneOptions = {}): Promise<PruneOutcome> {
  const own = await listOwnSnapshots(volume, settings.snapshotDir);
  const policy = settings.retention ?? {};
  const dated = own.map((s) => ({ name: s.name, time: s.time }));
  const now = options.now ?? new Date();
  if (!prunes(policy) || own.length === 0) {
    return { plan: planRetention(dated, {}, new Map(), now), deleted: [], failed: [] };
  }
  const [server, transfers] = await Promise.all([api.snapshots(volume), api.transfers()]);
  const plan = planRetention(dated, policy, localProtections(own, server, transfers.transfers, volume), now);
  const outcome: PruneOutcome = { plan, deleted: [], failed: [] };
  const paths = new Map(own.map((s) => [s.name, s.path]));
  for (const { name } of plan.delete) {
    if (options.dryRun === true) {
      outcome.deleted.push(name);
      continue;
    }
    try {
      await btrfs.deleteSubvolume(paths.get(name)!, options.signal ? { signal: options.signal } : {});
      outcome.deleted.push(name);
    } catch (err) {
      outcome.failed.push({ name, error: describeError(err) });
    }
  }
  return outcome;
}
