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
 *
 * Nor on its own snapshots alone: push plans on every snapshot in the folder (those taken by hand or by btrbk) and on
 * parents elsewhere on the filesystem (client/push/plan-facts.ts), and so does this; only its own are its to delete.
 */
import * as btrfs from '../../core/btrfs/index.ts';
import { describeError } from '../../core/errors.ts';
import { nextParent, planPush, serverView, type LocalSnapshot } from '../../core/plan.ts';
import { readKeyFile } from '../../core/crypto/key-file.ts';
import { describeSealing, mayChainOn, sealingOfKey, type Sealing } from '../../core/sealing.ts';
import { planRetention, type RetentionPlan } from '../../core/retention.ts';
import { prunes, type RetentionPolicy } from '../../core/retention-policy.ts';
import { inProgress, type SnapshotList, type Transfer } from '../../core/protocol.ts';
import type { ServerApi } from '../http/api.ts';
import { misdated, misdatedNote, takenOrder, takenTime } from '../../core/taken-order.ts';
import { listOwnSnapshots, type OwnSnapshot } from '../local/take.ts';
import { changedParentsOf } from '../push/changed-parent.ts';
import { planFacts } from '../push/plan-facts.ts';
import { resolveRequested } from '../local/snapshots.ts';

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
  /**
   * What push sends from the volume's folder (client/local/snapshots.ts resolveRequested): run's own snapshots and
   * those taken there by hand or by btrbk; default `own`. Push's parent may be one of those, or of `parents`.
   */
  sends?: readonly LocalSnapshot[];
  /** Read-only subvolumes elsewhere on the filesystem that push may take as parent (client/push/plan-facts.ts). */
  parents?: readonly LocalSnapshot[];
}

/** Which of `own` must stay, and why (pure; see the comment at the top). */
export function localProtections(
  own: readonly OwnSnapshot[],
  listed: Pick<SnapshotList, 'snapshots'>,
  transfers: readonly Transfer[],
  { volume, now, sealing, sends = own, parents = [] }: NextPush,
): Map<string, string> {
  // Push plans on more than run's own snapshots (those taken by hand, in the folder or elsewhere): by own alone, prune
  // named an older one of its own as the next parent when push would start from a newer one taken by hand. Reasons
  // go by subvolume (local UUID), and only run's own are returned: the others are not prune's to keep or delete.
  const seen = uniqueByLocalUuid([...own, ...sends, ...parents]);
  const byId = new Map<string, string>();
  const add = (s: LocalSnapshot, reason: string) => byId.set(s.localUuid, byId.has(s.localUuid) ? `${byId.get(s.localUuid)}; ${reason}` : reason);
  // The facts push plans on (core/plan.ts serverView): prune keeps what push takes only if both read them alike.
  const server = serverView(listed.snapshots);
  // So too the parents the server refused as changed here (client/push/changed-parent.ts): push passes them over, so
  // the parent it takes instead is the one to keep, not the changed one.
  const changedParents = changedParentsOf(transfers, volume);
  const onServer = new Set(server.map((s) => s.uuid));
  const held = seen.filter((s) => onServer.has(s.uuid));
  // The server's copy was changed after its receive (server/alterations.ts): the local one is the only copy as sent,
  // so retention must not take it, however old, for as long as the server says so.
  // (An archive's chain_full is its own rule, not a change.)
  for (const s of held) {
    const byHand = server.find((x) => x.uuid === s.uuid)?.altered?.what.filter((w) => w !== 'chain_full') ?? [];
    if (byHand.length > 0) add(s, `the server's copy was changed by hand after it was received (${byHand.join(', ')}): this is the only copy as sent`);
  }
  const parent = nextParent({ candidates: seen, server, now, sealing, changedParents });
  if (parent) {
    const newestHeld = [...held].sort(takenOrder(seen, server, now)).at(-1);
    const newest = server.find((s) => s.uuid === newestHeld?.uuid);
    const which =
      newestHeld?.uuid === parent.uuid ? 'newest snapshot both sides hold'
      : newest !== undefined && !newest.altered && !mayChainOn(sealing, newest.sealedBy) ? `newest snapshot both sides hold that is ${describeSealing(sealing)}, as push seals`
      : changedParents.has(newestHeld?.uuid ?? '') ? 'newest snapshot both sides hold that was not changed here after it was sent'
      : 'newest snapshot both sides hold that the server has not altered';
    add(parent, `${which}: the parent of the next incremental`);
  }
  const plan = planPush({ requested: uniqueByLocalUuid([...own, ...sends]), candidates: seen, server, now, sealing, changedParents });
  const first = plan.steps[0];
  if (first?.parent && first.parent.uuid !== parent?.uuid) add(first.parent, `parent of ${first.snapshot.name}, which the next push sends`);
  for (const step of plan.steps) add(step.snapshot, 'not on the server yet');
  for (const t of transfers.filter((x) => x.volume === volume && inProgress(x.state))) {
    for (const s of own) {
      if (s.uuid === t.uuid) add(s, `being sent (transfer ${t.id}, ${t.state})`);
      if (s.uuid === t.parentUuid) add(s, `parent of transfer ${t.id} in progress (${t.state})`);
    }
  }
  const names = new Map(own.map((s) => [s.localUuid, s.name]));
  return new Map([...byId].flatMap(([id, reason]) => (names.has(id) ? [[names.get(id)!, reason] as const] : [])));
}

function uniqueByLocalUuid(list: readonly LocalSnapshot[]): LocalSnapshot[] {
  const first = new Map<string, LocalSnapshot>();
  for (const s of list) if (!first.has(s.localUuid)) first.set(s.localUuid, s);
  return [...first.values()];
}

function leftAloneNote(volume: string, names: readonly string[]): string {
  const shown = names.length > 5 ? `${names.slice(0, 5).join(', ')} and ${names.length - 5} more` : names.join(', ');
  return `left alone whatever the retention: ${shown} (retention prunes only the names snapferry snapshot gives, ${volume}.YYYYMMDDTHHMMSSZ)`;
}

/** Plans and (unless dryRun) deletes; throws, deleting nothing, when the server cannot be asked. */
export async function pruneLocal(api: ServerApi, volume: string, settings: PruneSettings, options: PruneOptions = {}): Promise<PruneOutcome> {
  const { snapshots: own, passedOver } = await listOwnSnapshots(volume, settings.snapshotDir);
  const policy = settings.retention ?? {};
  const now = options.now ?? new Date();
  // Retention counts the times push and `snapshot` go by; one it cannot believe stays as it is, which retention
  // keeps as dated after now.
  const dated = own.map((s) => ({ name: s.name, time: takenTime(s, now) ?? s.time }));
  const notes = misdated(own, now).map(misdatedNote);
  if (options.dryRun === true && passedOver.length > 0) notes.push(leftAloneNote(volume, passedOver));
  if (!prunes(policy) || own.length === 0) {
    return { plan: planRetention(dated, {}, new Map(), now), deleted: [], failed: [], notes };
  }
  const [list, transfers] = await Promise.all([api.snapshots(volume), api.transfers()]);
  // What push would send from the folder, and the parents it would look for, read as push reads them. Read here again,
  // not handed over from the push `run` made just before: that push planned on the server's listing before it sent
  // (what it sent is a parent now), and on the filesystem as it was when it began, hours ago for a long upload. A
  // parent elsewhere deleted or made writable since (snapper's cleanup, say) is one the next push passes over: taken
  // from the old scan as the next parent (a push cut off before its new snapshot was across), it would leave the
  // snapshot of our own that push falls back on to the policy.
  const sends = await resolveRequested([settings.snapshotDir], { volume, snapshotDir: true });
  const { candidates: parents, server } = await planFacts(list, [...own, ...sends]);
  // Read only once there is something to prune; a missing or damaged key file stops prune as it stops push.
  const sealing = sealingOfKey(options.encrypt === undefined ? undefined : await readKeyFile(options.encrypt));
  const protections = localProtections(own, { snapshots: server }, transfers.transfers, { volume, now, sealing, sends, parents });
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
