/**
 * The server's retention: after each received snapshot, and at start, it applies the volume's policy
 * (core/retention.ts) to the snapshots the catalog holds, deletes the subvolumes the policy lets go, and records
 * each in the catalog's `removed` list once it is deleted, so a client that would have used one as a parent says why
 * it picks another.
 *
 * Always kept, whatever the policy says:
 * - the newest received snapshot of the volume (by the time it was received, and by the time it was taken): the
 *   parent of the client's next incremental;
 * - the parent an upload in progress names (transfer.parentUuid): its receive needs it;
 * - a snapshot the server is sending (a restore's btrfs send, of it or from it as parent: server/sends.ts), until
 *   that send ends; its volume is pruned again then;
 * - everything of a volume that has a whole stream being received or waiting for its receive (verifying, receiving,
 *   waiting): that volume is left alone until the receive is over, and is pruned right after it. A receive that runs
 *   beside an upload still `uploading` does not count: only that upload's parent is kept then.
 *
 * A snapshot's time is when it was taken, as the client sent it (server/snapshot-time.ts); snapshots catalogued
 * before clients sent it are dated by their name, else by their arrival, and `--dry-run` says which were. A backlog
 * that arrives in one go would otherwise fall into one day, and the server's prune after each receive would lose it.
 */
import * as btrfs from '../core/btrfs/index.ts';
import { describeError } from '../core/errors.ts';
import type { SafeName } from '../core/names.ts';
import { waitingStates, type TransferState } from '../core/protocol.ts';
import { describePlan, planRetention, type RetentionPlan } from '../core/retention.ts';
import { prunes, type RetentionPolicy } from '../core/retention-policy.ts';
import { snapshotDating, snapshotTime, type DatedFrom } from './snapshot-time.ts';
import type { Catalog, SnapshotRecord } from './catalog.ts';
import type { ServerLayout } from './layout.ts';
import type { Logger } from './log.ts';
import { SavedDigests } from './verify/saved-digests.ts';
import { failUploadsWithoutParent } from './disk-truth.ts';
import type { SendsInProgress } from './sends.ts';

/** The policy of one received volume (server/config.ts retentionFor: its own, else the default, else none). */
export type RetentionLookup = (client: string, volume: string) => RetentionPolicy;

/** No policy anywhere: nothing is pruned. */
export const KEEP_EVERYTHING: RetentionLookup = () => ({});

/** A whole stream being received, or waiting to be: its parent and clone sources must stay as they are. */
const RECEIVING: readonly TransferState[] = ['verifying', 'receiving', ...waitingStates];

export { snapshotTime };

export interface VolumePlan {
  client: string;
  volume: string;
  /** Why the volume is left alone this time (a receive under way), or null. */
  busy: string | null;
  plan: RetentionPlan;
  /** For people: snapshots dated otherwise than by the time their client sent (catalogued before it did). */
  notes: string[];
}

function datingNotes(held: readonly SnapshotRecord[], now: Date): string[] {
  const by = (from: DatedFrom) => held.filter((s) => snapshotDating(s, now).from === from).map((s) => s.name);
  const notes: string[] = [];
  const named = by('name');
  const future = by('future');
  const arrived = by('arrival');
  if (named.length > 0) notes.push(`dated by the time in their names, read as UTC (catalogued before clients sent the time a snapshot was taken): ${named.join(', ')}`);
  if (future.length > 0) notes.push(`dated by when they arrived: the time they came with lies in the future (a wrong clock or a name typed by hand): ${future.join(', ')}`);
  if (arrived.length > 0) notes.push(`dated by when they arrived (catalogued before clients sent the time a snapshot was taken, and no time in their names): ${arrived.join(', ')}`);
  return notes;
}

/** What the policy would do to one volume now (no I/O beyond reading the catalog in memory). */
export function planVolume(catalog: Catalog, retention: RetentionLookup, client: string, volume: string, now = new Date()): VolumePlan {
  const held = catalog.snapshots(client, volume);
  const transfers = catalog.transfers({ client, volume });
  const receiving = transfers.find((t) => RECEIVING.includes(t.state));
  const dated = held.map((s) => ({ name: s.name, time: snapshotTime(s, now) }));
  const notes = datingNotes(held, now);
  if (receiving) {
    const busy = `transfer ${receiving.id} of ${receiving.snapshot} is ${receiving.state}`;
    return { client, volume, busy, plan: planRetention(dated, {}, new Map(), now), notes };
  }
  return { client, volume, busy: null, plan: planRetention(dated, retention(client, volume), protections(catalog, client, volume), now), notes };
}

function protections(catalog: Catalog, client: string, volume: string): Map<string, string> {
  const protect = new Map<string, string>();
  const add = (name: string, reason: string) => protect.set(name, protect.has(name) ? `${protect.get(name)}; ${reason}` : reason);
  const held = catalog.snapshots(client, volume);
  // Newest by the time it was taken, and (the one use of arrival here, a keep and never a delete) the last to
  // arrive: the client's chain goes on from what it pushed last. The two agree unless a restart adopted an older
  // snapshot into the catalog (server/reconcile.ts), and then both stay rather than guess.
  const newestOf = (list: readonly SnapshotRecord[]) => [
    [...list].sort((a, b) => a.receivedAt.localeCompare(b.receivedAt)).at(-1),
    [...list].sort((a, b) => snapshotTime(a).getTime() - snapshotTime(b).getTime()).at(-1),
  ];
  // A snapshot changed by hand here is never a parent (core/plan.ts): the client's next incremental goes on the newest
  // one that is intact, which must stay too, or that push goes out in full.
  for (const newest of new Set(newestOf(held))) {
    if (newest) add(newest.name, newest.altered ? 'newest received snapshot (changed by hand here: never a parent)' : 'newest received snapshot: the parent of the next incremental');
  }
  for (const intact of new Set(newestOf(held.filter((s) => !s.altered)))) {
    if (intact && !protect.has(intact.name)) add(intact.name, 'newest snapshot not changed by hand: the parent of the next incremental');
  }
  for (const t of catalog.transfers({ client, volume })) {
    if (t.state !== 'uploading' || t.parentUuid === null) continue;
    const parent = held.find((s) => s.uuid === t.parentUuid);
    if (parent) add(parent.name, `parent of upload ${t.id} in progress`);
  }
  return protect;
}

/** Every volume the catalog holds snapshots of, as [client, volume] pairs, sorted. */
export function catalogVolumes(catalog: Catalog): [string, string][] {
  const keys = new Set(catalog.allSnapshots().map((s) => `${s.client}/${s.volume}`));
  return [...keys].sort().map((k) => k.split('/') as [string, string]);
}

export const PRUNED_REASON = "pruned by the server's retention policy";

/**
 * When a volume whose delete failed is pruned again: after `firstMs`, doubling up to `maxMs` while it keeps failing.
 * Without it, the next pruning was the next push's, days later maybe, and the snapshot held its space till then.
 */
export interface PruneRetry {
  firstMs: number;
  maxMs: number;
}

export const DEFAULT_PRUNE_RETRY: PruneRetry = { firstMs: 60_000, maxMs: 15 * 60_000 };

/** Applies the policies; one pruning at a time, so a start-up pass and a receive's pass never overlap. */
export class ServerPruner {
  private chain: Promise<unknown> = Promise.resolve();
  /** Volumes with a delete that failed: the timer of their next pruning and the delay it was set with. */
  private readonly retries = new Map<string, { timer: NodeJS.Timeout | null; delayMs: number }>();
  /** Per snapshot whose delete keeps failing, the failure last logged: logged once, not at every retry. */
  private readonly failing = new Map<string, string>();
  private stopped = false;

  constructor(
    private readonly layout: ServerLayout,
    private readonly catalog: Catalog,
    private readonly log: Logger,
    private readonly retention: RetentionLookup,
    /** Snapshots this server is sending now (a restore): never deleted under their send. */
    private readonly sends?: SendsInProgress,
    private readonly retry: PruneRetry = DEFAULT_PRUNE_RETRY,
  ) {}

  /** No more retries (the server is closing). */
  stop(): void {
    this.stopped = true;
    for (const r of this.retries.values()) if (r.timer) clearTimeout(r.timer);
    this.retries.clear();
  }

  /** Prunes one volume; failures are logged, never thrown: a pruning problem must not fail a receive. */
  pruneVolume(client: string, volume: string): Promise<string[]> {
    const run = this.chain.then(() => this.prune(client, volume));
    this.chain = run.catch(() => undefined);
    return run.catch((err: unknown) => {
      this.log.error({ client, volume, err: describeError(err) }, 'pruning failed');
      return [];
    });
  }

  /** Every volume that has a policy (at start). */
  async pruneAll(): Promise<void> {
    for (const [client, volume] of catalogVolumes(this.catalog)) await this.pruneVolume(client, volume);
  }

  private async prune(client: string, volume: string): Promise<string[]> {
    if (!prunes(this.retention(client, volume))) return [];
    const { busy, plan } = planVolume(this.catalog, this.retention, client, volume);
    if (busy !== null) {
      this.log.info({ client, volume, busy }, 'not pruning while a receive is under way');
      return [];
    }
    const deleted: string[] = [];
    let failed = false;
    for (const { name } of plan.delete) {
      const record = this.catalog.snapshots(client, volume).find((s) => s.name === name);
      if (!record || this.inUse(record)) continue;
      if (this.sends?.sending(client, volume, record.uuid)) {
        // Its volume is pruned again when the send ends (SendsInProgress.onVolumeIdle).
        this.log.info({ client, volume, snapshot: name }, 'not deleting a snapshot while the server sends it (a restore); pruned once the send ends');
        continue;
      }
      const p = this.layout.snapshotPath(client as SafeName, volume as SafeName, name as SafeName);
      // Deleted first, recorded after: a removal is recorded only once it happened. A delete that fails (a send
      // this server does not run, "send may be in progress") leaves the record as it was, and the volume is pruned
      // again on a timer (scheduleRetry), as well as at the next receive, at start, when a restore of it ends.
      const key = `${client}/${volume}/${record.uuid}`;
      try {
        await this.catalog.whileDeleting(record, () => btrfs.deleteSubvolume(p));
      } catch (err) {
        failed = true;
        const described = describeError(err);
        if (this.failing.get(key) !== described) {
          this.failing.set(key, described);
          this.log.warn({ client, volume, snapshot: name, err: described }, 'could not delete a pruned snapshot: kept in the catalog, tried again in a few minutes');
        }
        continue;
      }
      this.failing.delete(key);
      const current = this.catalog.snapshots(client, volume).find((s) => s.name === name && s.uuid === record.uuid);
      if (current) await this.catalog.removeSnapshot(current, PRUNED_REASON);
      // An upload admitted on it while it was being deleted can never be received: failed now, so its client goes
      // around it (parent_missing) instead of its receive failing later.
      await failUploadsWithoutParent({ catalog: this.catalog, log: this.log }, { client: client as SafeName, volume: volume as SafeName });
      deleted.push(name);
      // Its saved digest (server/verify/) goes with it: a digest of nothing the server holds.
      await new SavedDigests(this.layout).drop(client as SafeName, volume as SafeName, record.uuid).catch(() => undefined);
      this.log.info({ client, volume, snapshot: name }, 'snapshot deleted by the retention policy');
    }
    this.scheduleRetry(client, volume, failed);
    return deleted;
  }

  /** After a failed delete, the volume's next pruning on a timer, later each time it fails again; none after a pass without one. */
  private scheduleRetry(client: string, volume: string, failed: boolean): void {
    const key = `${client}/${volume}`;
    const current = this.retries.get(key);
    if (!failed || this.stopped) {
      if (current?.timer) clearTimeout(current.timer);
      this.retries.delete(key);
      return;
    }
    if (current?.timer) return;
    const delayMs = current ? Math.min(current.delayMs * 2, this.retry.maxMs) : this.retry.firstMs;
    const entry: { timer: NodeJS.Timeout | null; delayMs: number } = { timer: null, delayMs };
    entry.timer = setTimeout(() => {
      entry.timer = null;
      void this.pruneVolume(client, volume);
    }, delayMs);
    // A server closing does not wait for it.
    entry.timer.unref();
    this.retries.set(key, entry);
  }

  private inUse(record: SnapshotRecord): boolean {
    return this.catalog
      .transfers({ client: record.client, volume: record.volume })
      .some((t) => RECEIVING.includes(t.state) || (t.state === 'uploading' && t.parentUuid === record.uuid));
  }
}

/**
 * For `snapferry prune-server`: what each volume's policy deletes and why the rest stays; `dryRun`: said as what it
 * would delete (nothing is).
 */
export function describeServerPlans(catalog: Catalog, retention: RetentionLookup, now = new Date(), dryRun = true): string[] {
  const lines: string[] = [];
  for (const [client, volume] of catalogVolumes(catalog)) {
    const policy = retention(client, volume);
    const { busy, plan, notes } = planVolume(catalog, retention, client, volume, now);
    const head = `${client}/${volume}:`;
    if (!prunes(policy)) lines.push(`${head} no retention policy, all ${plan.keep.length} kept`);
    else if (busy !== null) lines.push(`${head} left alone: ${busy}`);
    else lines.push(`${head} ${dryRun ? 'would delete' : 'deletes'} ${plan.delete.length}, ${dryRun ? 'keep' : 'keeps'} ${plan.keep.length}`, ...describePlan(plan).map((l) => `  ${l}`));
    if (prunes(policy) && busy === null) lines.push(...notes.map((n) => `  note: ${n}`));
  }
  return lines;
}
