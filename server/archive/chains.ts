/**
 * A volume's archive as chains (docs/archive.md, "Chains and retention"): each full stream and the incrementals that
 * hang from it, parent by parent. Pure: the archive's catalog gives the streams, this decides when an incremental
 * may still extend a chain, which streams a restore of one snapshot needs, and which chains retention may delete.
 *
 * Why chains must be bounded: an incremental is worth nothing without every stream between it and its full, so a
 * restore walks the whole path; one cut-off chain of a thousand incrementals would make a restore over a slow line
 * fetch a thousand streams. A full is sent again after so many incrementals or days, and retention deletes only
 * whole chains, never a stream some kept snapshot's path runs through.
 */
import { SnapferryError } from '../../core/errors.ts';
import { planRetention, type RetentionPlan } from '../../core/retention.ts';
import type { RetentionPolicy } from '../../core/retention-policy.ts';

export interface ArchivedStream {
  /** The snapshot's UUID as the client names it. */
  uuid: string;
  name: string;
  /** The snapshot the stream is an incremental on; null for a full. */
  parentUuid: string | null;
  /** When the snapshot was taken: retention counts this. */
  time: Date;
  /** When the stream was stored: a chain's age counts from its full's. */
  storedAt: Date;
}

export interface Chain {
  full: ArchivedStream;
  /** The full first, then each stream after its parent. */
  members: ArchivedStream[];
}

export interface ChainRules {
  /** The most incrementals a chain holds (all its members but the full); then the next push is a full. */
  fullEveryIncrementals: number;
  /** After this many days from its full, a chain takes no more incrementals. */
  fullEveryDays: number;
}

export const DEFAULT_CHAIN_RULES: ChainRules = { fullEveryIncrementals: 14, fullEveryDays: 30 };

export interface Chains {
  chains: Chain[];
  /** Streams whose parent is not in the archive: no restore can use them (a stream lost by hand, or a bug). */
  broken: ArchivedStream[];
}

export function chainsOf(streams: readonly ArchivedStream[]): Chains {
  const children = new Map<string, ArchivedStream[]>();
  for (const s of streams) {
    if (s.parentUuid === null) continue;
    const list = children.get(s.parentUuid) ?? [];
    list.push(s);
    children.set(s.parentUuid, list);
  }
  const chains: Chain[] = [];
  const reached = new Set<string>();
  for (const full of streams.filter((s) => s.parentUuid === null).sort(byStored)) {
    const members: ArchivedStream[] = [];
    const queue = [full];
    for (let s = queue.shift(); s !== undefined; s = queue.shift()) {
      if (reached.has(s.uuid)) continue;
      reached.add(s.uuid);
      members.push(s);
      queue.push(...(children.get(s.uuid) ?? []).sort(byStored));
    }
    chains.push({ full, members });
  }
  return { chains, broken: streams.filter((s) => !reached.has(s.uuid)) };
}

/**
 * Whether a new incremental on `parentUuid` may join the parent's chain, or must be a full: the chain's length and
 * age rules. The answer's `reason` is said to the user when it is no.
 *
 * The length counts every incremental of the chain, not only those on the parent's path: a chain that may branch
 * without end is never closed, so no full would ever be sent again and a chain's streams (retention deletes only
 * whole chains) would pile up for ever. A chain that holds `fullEveryIncrementals` takes no more.
 */
export function mayExtend(
  streams: readonly ArchivedStream[],
  parentUuid: string,
  now: Date,
  rules: ChainRules,
): { ok: true } | { ok: false; reason: string } {
  const full = restorePath(streams, parentUuid)[0]!;
  const chain = chainsOf(streams).chains.find((c) => c.full.uuid === full.uuid)!;
  const incrementals = chain.members.length - 1;
  if (incrementals >= rules.fullEveryIncrementals) {
    return {
      ok: false,
      reason: `the chain from ${full.name} holds ${incrementals} incrementals, the most allowed (fullEvery.incrementals: ${rules.fullEveryIncrementals})`,
    };
  }
  const ageDays = (now.getTime() - full.storedAt.getTime()) / 86_400_000;
  if (ageDays >= rules.fullEveryDays) {
    return { ok: false, reason: `the chain's full ${full.name} is ${Math.floor(ageDays)} days old, past fullEvery.days (${rules.fullEveryDays})` };
  }
  return { ok: true };
}

/** The streams a restore of `uuid` fetches, its full first and `uuid` last. */
export function restorePath(streams: readonly ArchivedStream[], uuid: string): ArchivedStream[] {
  return restorePathIn(indexed(streams), uuid);
}

function restorePathIn(byUuid: ReadonlyMap<string, ArchivedStream>, uuid: string): ArchivedStream[] {
  const path: ArchivedStream[] = [];
  const seen = new Set<string>();
  for (let at: string | null = uuid; at !== null; ) {
    const s = byUuid.get(at);
    if (s === undefined) {
      if (at === uuid) throw new SnapferryError('not_found', `the archive holds no snapshot with UUID ${uuid}`);
      throw new SnapferryError('chain_broken', `the archive lacks ${at}, which the restore of ${byUuid.get(uuid)?.name ?? uuid} needs: restore a snapshot of another chain`, {
        details: { uuid, missing: at },
      });
    }
    // A loop cannot come from btrfs (a parent is older than its child); a catalog edited by hand could make one.
    if (seen.has(at)) throw new SnapferryError('chain_broken', `the archive's chain of ${s.name} loops back on itself`, { details: { uuid } });
    seen.add(at);
    path.push(s);
    at = s.parentUuid;
  }
  return path.reverse();
}

export interface ArchiveRetention {
  /** The policy's own plan, by snapshot name (the reasons each is kept). */
  plan: RetentionPlan;
  /** Chains none of whose snapshots the policy keeps: deleted whole. */
  deleteChains: Chain[];
  /** Snapshots the policy would drop but that stay, because a kept one shares their chain. */
  keptForChain: { name: string; chain: string }[];
}

/**
 * Retention over an archive: the policy chooses snapshots as it does on a btrfs server (core/retention.ts); a chain
 * goes only when it keeps none of them. Deleting single streams inside a chain would save little and risk much: a
 * stream's descendants all need it, and only whole chains keep that reasoning out of the way. `protecting` names
 * snapshots kept whatever the policy says, with why (archive-retention.ts: the newest, the parents of uploads).
 */
export function planArchiveRetention(
  streams: readonly ArchivedStream[], policy: RetentionPolicy, now: Date, protecting: ReadonlyMap<string, string> = new Map(),
): ArchiveRetention {
  const { chains, broken } = chainsOf(streams);
  // A broken stream is no use to a restore, yet deleting what we cannot explain is for a person to decide.
  const protect = new Map(protecting);
  for (const s of broken) protect.set(s.name, 'its parent is missing from the archive: left for an operator');
  const plan = planRetention(streams.map((s) => ({ name: s.name, time: s.time })), policy, protect, now);
  const kept = new Set(plan.keep.map((k) => k.name));
  const deleteChains: Chain[] = [];
  const keptForChain: ArchiveRetention['keptForChain'] = [];
  for (const chain of chains) {
    if (chain.members.some((m) => kept.has(m.name))) {
      for (const m of chain.members) if (!kept.has(m.name)) keptForChain.push({ name: m.name, chain: chain.full.name });
    } else {
      deleteChains.push(chain);
    }
  }
  return { plan, deleteChains, keptForChain };
}

function indexed(streams: readonly ArchivedStream[]): Map<string, ArchivedStream> {
  return new Map(streams.map((s) => [s.uuid, s]));
}

const byStored = (a: ArchivedStream, b: ArchivedStream): number => a.storedAt.getTime() - b.storedAt.getTime() || a.name.localeCompare(b.name);
