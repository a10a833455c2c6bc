/**
 * `snapferry prune`: applies a volume's retention policy (core/retention.ts) to its local snapshots
 * (client/local/take.ts), never deleting what the chain to the server still needs. It asks the server first and
 * prunes nothing when it cannot: only the server knows which snapshot the next incremental can start from.
 *
 * Always kept, whatever the policy says, by push's own rules and order (core/plan.ts, core/taken-order.ts), so that
 * the two never disagree on what "newest" or "not sent yet" means:
 * - the parent the next push would take (nextParent): the newest snapshot both sides hold (the server's snapshots
 *   carry our UUID as their Received UUID) that is not altered on the server and is sealed as push seals (`encrypt:`,
 *   core/sealing.ts: after `encrypt:` was turned on, the newest sealed one, not the newest plain one), nor one the
 *   server refused as changed here after it was sent (parent_changed, by the volume's failed transfers, as push reads
 *   them); without it the next push is a full one;
 * - every snapshot the next push would send (the steps of its plan), and the parent of the first; among them one the
 *   server lacks that btrfs made after those it holds, though its time says older (a clock set back): push's order
 *   counts it newer (core/taken-order.ts), so push sends it. Those push skips as older, btrfs having made them
 *   earlier, are left to the policy: they are, in the main, what the server's own retention deleted, and keeping
 *   them for ever would fill the disk;
 * - the snapshot an upload in progress sends, and the parent it sends it from: a resume runs the same btrfs send.
 *
 * Not by listOwnSnapshots()'s order (names): a snapshot named with a wrong clock sorted after the real ones, so
 * every unpushed snapshot before it counted as older than "the newest both sides hold", and was deleted.
 */
import { withClientUuids } from '../../core/uuid-namespace.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { describeError } from '../../core/errors.ts';
import { nextParent, planPush, serverView } from '../../core/plan.ts';
import { readKeyFile } from '../../core/crypto/key-file.ts';
import { describeSealing, mayChainOn, sealingOfKey, type Sealing } from '../../core/sealing.ts';
import { planRetention, type RetentionPlan } from '../../core/retention.ts';
import { prunes, type RetentionPolicy } from '../../core/retention-policy.ts';
import { inProgress, type SnapshotList, type Transfer } from '../../core/protocol.ts';
import type { ServerApi } from '../http/api.ts';
import { misdated, misdatedNote, takenOrder, takenTime } from '../../core/taken-order.ts';
import { listOwnSnapshots, type OwnSnapshot } from '../local/take.ts';
import { changedParentsOf } from '../push/changed-parent.ts';

export interface PruneSettings {
  snapshotDir: string;
  retention?: RetentionPolicy;
}

export interface PruneOptions {
  dryRun?: boolean;
  /** The key file push seals with (`encrypt:`): which chain the next push builds on, so which parent to keep. */
  encrypt?: string;
  now?: Date;
  signal?: AbortSignal;
  /**
   * Snapshots whose server copy this run's verify found different: each is kept, the local one being the only copy
   * as it was sent (the run exits 3, and the user decides what to mend).
   */
  differs?: readonly string[];
}

export interface PruneOutcome {
  plan: RetentionPlan;
  /** Deleted (with dryRun: would be deleted). */
  deleted: string[];
  failed: { name: string; error: string }[];
  /** Sentences for the user: snapshots whose names give a time that cannot be right. */
  notes: string[];
}

/** What the next push is, as far as prune must know: when it is, and how it seals (`encrypt:`). */
export interface NextPush {
  volume: string;
  now: Date;
  sealing: Sealing;
}

/** Which of `own` must stay, and why (pure; see the comment at the top). */
export function localProtections(
  own: readonly OwnSnapshot[],
  listed: Pick<SnapshotList, 'snapshots'>,
  transfers: readonly Transfer[],
  { volume, now, sealing }: NextPush,
): Map<string, string> {
  const protect = new Map<string, string>();
  const add = (name: string, reason: string) => protect.set(name, protect.has(name) ? `${protect.get(name)}; ${reason}` : reason);
  // The facts push plans on (core/plan.ts serverView): prune keeps what push takes only if both read them alike.
  const server = serverView(listed.snapshots);
  // So too the parents the server refused as changed here (client/push/changed-parent.ts): push passes them over, so
  // the parent it takes instead is the one to keep, not the changed one.
  const changedParents = changedParentsOf(transfers, volume);
  const onServer = new Set(server.map((s) => s.uuid));
  const held = own.filter((s) => onServer.has(s.uuid));
  // The server's copy was changed after its receive (server/alterations.ts): the local one is the only copy as sent,
  // so retention must not take it, however old, for as long as the server says so.
  // (An archive's chain_full is its own rule, not a change.)
  for (const s of held) {
    const byHand = server.find((x) => x.uuid === s.uuid)?.altered?.what.filter((w) => w !== 'chain_full') ?? [];
    if (byHand.length > 0) add(s.name, `the server's copy was changed by hand after it was received (${byHand.join(', ')}): this is the only copy as sent`);
  }
  const parent = nextParent({ candidates: own, server, now, sealing, changedParents });
  if (parent) {
    const newestHeld = [...held].sort(takenOrder(own, server, now)).at(-1);
    const newest = server.find((s) => s.uuid === newestHeld?.uuid);
    const which =
      newestHeld?.uuid === parent.uuid ? 'newest snapshot both sides hold'
      : newest !== undefined && !newest.altered && !mayChainOn(sealing, newest.sealedBy) ? `newest snapshot both sides hold that is ${describeSealing(sealing)}, as push seals`
      : changedParents.has(newestHeld?.uuid ?? '') ? 'newest snapshot both sides hold that was not changed here after it was sent'
      : 'newest snapshot both sides hold that the server has not altered';
    add(parent.name, `${which}: the parent of the next incremental`);
  }
  const plan = planPush({ requested: own, candidates: own, server, now, sealing, changedParents });
  const first = plan.steps[0];
  if (first?.parent && first.parent.uuid !== parent?.uuid) add(first.parent.name, `parent of ${first.snapshot.name}, which the next push sends`);
  for (const step of plan.steps) add(step.snapshot.name, 'not on the server yet');
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
  const now = options.now ?? new Date();
  // Retention counts the times push and `snapshot` go by; one it cannot believe stays as it is, which retention
  // keeps as dated after now.
  const dated = own.map((s) => ({ name: s.name, time: takenTime(s, now) ?? s.time }));
  const notes = misdated(own, now).map(misdatedNote);
  if (!prunes(policy) || own.length === 0) {
    return { plan: planRetention(dated, {}, new Map(), now), deleted: [], failed: [], notes };
  }
  const [list, transfers] = await Promise.all([api.snapshots(volume), api.transfers()]);
  // As push plans on it: a snapshot whose UUID the server lost is known by its namespaced one (core/uuid-namespace.ts).
  const server = { ...list, snapshots: withClientUuids(list.snapshots, list.client, own.map((s) => s.uuid)) };
  // Read only once there is something to prune; a missing or damaged key file stops prune as it stops push.
  const sealing = sealingOfKey(options.encrypt === undefined ? undefined : await readKeyFile(options.encrypt));
  const protections = localProtections(own, server, transfers.transfers, { volume, now, sealing });
  for (const name of options.differs ?? []) {
    const reason = "verify found the server's copy different: this is the only copy as sent";
    protections.set(name, protections.has(name) ? `${protections.get(name)}; ${reason}` : reason);
  }
  const plan = planRetention(dated, policy, protections, now);
  const outcome: PruneOutcome = { plan, deleted: [], failed: [], notes };
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
