/**
 * Which snapshots to send, in which order, each with which parent. Pure: the caller gathers the facts (local
 * read-only subvolumes, the server's catalog), this decides. No I/O, so every case is a unit test.
 *
 * Rules (docs/design.md, "Parent selection"):
 * - The server's snapshots carry the client snapshot's UUID (their Received UUID); a local snapshot with that UUID is
 *   held by both sides and can be a parent.
 * - "Older" and "newest" are by when each snapshot was taken (core/taken-order.ts), not by btrfs generation: a
 *   snapshot restored from the server is as old as when it was taken, not as the restore that made it here.
 * - Requested snapshots the server lacks go oldest first; the first uses the newest common snapshot older than
 *   itself as parent (full send when there is none), each later one uses the one sent before it.
 * - A requested snapshot older than the newest one the server already holds is skipped: sending it would not make
 *   the server's chain any newer, and btrbk does the same.
 * - When the server lost a snapshot that would have been the better parent (an admin deleted it), the plan says so.
 * - A snapshot of another source is never a parent (core/sources.ts says which source each is of); one whose source
 *   btrfs does not know (a chain begun by a full receive, as after a restore) may be, when none of its own is held.
 *   The caller has already refused a request that mixes sources (client/push/push.ts).
 * - A snapshot the server flags as changed by hand (Snapshot.altered: made writable, its Received UUID cleared) is
 *   never a parent: an incremental on it would build on content that may no longer be the client's snapshot. The
 *   plan passes it over, and says so when it would have been the parent.
 * - A snapshot sealed otherwise than this push (plain against `encrypt:`, or another key: core/sealing.ts) is passed
 *   over the same way: a chain never mixes sealings, so that it restores in one run with one config. Turning
 *   `encrypt:` on (or off, or changing the key) therefore starts a new chain with a full send, and the plan says why.
 * - A local snapshot changed after it was sent (`changedParents`: the server refused an incremental on it with
 *   parent_changed, server/stream-start.ts) is never a parent either: btrfs send describes changes from it as it is
 *   now, and the server's copy is it as it was sent. The plan passes it over and says so, as for one altered there.
 * - A requested snapshot dated after now, or after btrfs made it (a name typed by hand, a clock that was wrong), is
 *   dated by its Creation time instead (core/taken-order.ts), and a note says so: trusted, it would be "the newest"
 *   the server holds, and every real snapshot after it would be skipped until that date.
 * - A snapshot made here by `btrfs subvolume snapshot` is never older than one btrfs had here before it (lower
 *   generation), whatever its time says (core/taken-order.ts): after the clock was set back, new snapshots are named in
 *   the past, and by their time alone push skipped them for ever as older than the newest the server holds. A note
 *   says the clock looks wrong.
 *
 * client/run/prune.ts keeps what these rules need (nextParent, and every step of a plan): one set of rules for both,
 * on the same facts (serverView, and the push's sealing).
 */
import { sourceKeys } from './sources.ts';
import { madeAfter, madeAfterNote, misdated, misdatedNote, takenOrder, type AgeOrder } from './taken-order.ts';
import { describeSealing, mayChainOn, sealingOfListed, type Sealing } from './sealing.ts';
import type { LocalSnapshot } from './local-snapshot.ts';
import type { Snapshot } from './protocol/snapshots.ts';

export type { LocalSnapshot } from './local-snapshot.ts';

export interface ServerSnapshotView {
  uuid: string;
  name: string;
  /** When it was taken, as the client that pushed it said (Snapshot.takenAt): dates a restored snapshot here. */
  takenAt?: string | null;
  /** Set when the server found it changed by hand (core/protocol.ts SnapshotAltered). */
  altered?: { what: readonly string[] } | null;
  /** The key id its stream is sealed under, null: plain; undefined: the server does not say (core/sealing.ts). */
  sealedBy?: Sealing | undefined;
}

/**
 * The server's listing as the planner reads it: each snapshot's sealing as core/sealing.ts reads a listing (a btrfs
 * server's are plain, an older archive's unknown). The raw listing leaves a btrfs server's `sealedBy` unset, which
 * the planner would read as unknown, no parent for a sealed push: push and prune both plan on this.
 */
export function serverView(listed: readonly Snapshot[]): ServerSnapshotView[] {
  return listed.map((s) => ({ ...s, sealedBy: sealingOfListed(s) }));
}

export interface ServerRemovedView {
  uuid: string;
  name: string;
  reason: string;
}

export interface PlanInput {
  /** What the user asked to push. */
  requested: readonly LocalSnapshot[];
  /** Every read-only subvolume of the source filesystem that could serve as a parent (may include requested). */
  candidates: readonly LocalSnapshot[];
  server: readonly ServerSnapshotView[];
  removed?: readonly ServerRemovedView[];
  /** How this push seals its frames: the key id with `encrypt:`; null or absent: plain. */
  sealing?: Sealing;
  /** What "after now" is measured against (core/taken-order.ts); default the clock. */
  now?: Date;
  /**
   * UUIDs of snapshots here that were changed after they were sent (the server said so: parent_changed): the server's
   * copy is not what an incremental from them describes changes from, so none is a parent.
   */
  changedParents?: ReadonlySet<string>;
}

export interface PlanStep {
  snapshot: LocalSnapshot;
  parent: LocalSnapshot | null;
  /**
   * When the order counts it taken, where that is not its own time: later (core/taken-order.ts madeAfter: made after
   * a clock was set back), or, for a time not believed (misdated: after now or after btrfs made it), btrfs's Creation
   * time, or null where nothing is believed. The server dates it by this: by its own time its retention would take
   * the newest backup for the oldest and delete it first, or keep one named 2030 as the newest until 2030.
   */
  takenAt?: Date | null;
}

export interface Plan {
  steps: PlanStep[];
  /** Requested snapshots the server already holds. */
  present: LocalSnapshot[];
  /** Requested snapshots older than the newest the server holds; not sent. */
  skipped: LocalSnapshot[];
  /** Sentences for the user about choices they may not expect. */
  notes: string[];
}

function uniqueByUuid(list: readonly LocalSnapshot[]): LocalSnapshot[] {
  const seen = new Map<string, LocalSnapshot>();
  for (const s of list) if (!seen.has(s.uuid)) seen.set(s.uuid, s);
  return [...seen.values()];
}

/** The plan's facts, and the order by age of every snapshot in them. */
interface Facts extends PlanInput {
  byAge: AgeOrder;
}

export function planPush(planInput: PlanInput): Plan {
  const now = planInput.now ?? new Date();
  const known = uniqueByUuid([...planInput.candidates, ...planInput.requested]);
  const byAge = takenOrder(known, planInput.server, now);
  const input: Facts = { ...planInput, byAge };
  const onServer = new Set(input.server.map((s) => s.uuid));
  const requested = uniqueByUuid(input.requested).sort(byAge);
  const present = requested.filter((s) => onServer.has(s.uuid));
  const newestPresent = present.at(-1);
  const missing = requested.filter((s) => !onServer.has(s.uuid));
  const skipped = newestPresent ? missing.filter((s) => byAge(s, newestPresent) < 0) : [];
  const toSend = missing.filter((s) => !skipped.includes(s));
  const wrongTimes = misdated(uniqueByUuid(input.requested), now);
  const notes: string[] = wrongTimes.map(misdatedNote);
  for (const s of skipped) {
    notes.push(`skipping ${s.name}: the server already holds the newer ${newestPresent?.name}`);
  }
  // Sent although its time says it is older than what the server holds: say why, once the clock can be looked at.
  const sending = new Set(toSend.map((s) => s.name));
  const madeLater = madeAfter(known, input.server, now).filter((m) => sending.has(m.name));
  notes.push(...madeLater.map(madeAfterNote));
  const takenAt = new Map<string, Date | null>([...wrongTimes.map((m) => [m.name, m.instead] as const), ...madeLater.map((m) => [m.name, m.at] as const)]);
  const step = (snapshot: LocalSnapshot, parent: LocalSnapshot | null): PlanStep => {
    const at = takenAt.get(snapshot.name);
    return at === undefined ? { snapshot, parent } : { snapshot, parent, takenAt: at };
  };

  const steps: PlanStep[] = [];
  const first = toSend[0];
  if (first) {
    const parent = chooseParent(first, input);
    steps.push(step(first, parent));
    noteLostParent(first, parent, input, notes);
    noteOtherSource(first, parent, input, notes);
    notePassedOverParent(first, parent, input, notes);
    for (let i = 1; i < toSend.length; i++) {
      steps.push(step(toSend[i]!, toSend[i - 1]!));
    }
  }
  return { steps, present, skipped, notes };
}

/**
 * The parent the next push would take for a snapshot newer than all of `candidates` (of the newest one's source):
 * the newest snapshot both sides hold that is intact on the server, sealed as that push seals and not changed here
 * after it was sent (`changedParents`). What local pruning
 * must never delete. `sealing` is required: with `encrypt:` the push's chain is the sealed one, and the plain
 * snapshot newest by time is no parent of it (a prune that kept that one deleted the sealed parent: a full send).
 */
export function nextParent(input: Pick<PlanInput, 'candidates' | 'server' | 'now' | 'changedParents'> & { sealing: Sealing }): LocalSnapshot | null {
  const candidates = uniqueByUuid(input.candidates);
  const byAge = takenOrder(candidates, input.server, input.now ?? new Date());
  const facts: Facts = {
    requested: [], candidates, server: input.server, sealing: input.sealing, byAge,
    ...(input.changedParents ? { changedParents: input.changedParents } : {}),
  };
  const newest = [...candidates].sort(facts.byAge).at(-1);
  return newest ? chooseParent(newest, facts, { orItself: true }) : null;
}

/**
 * The newest snapshot both sides hold, intact on the server, that is older than `snapshot` and of its source; else
 * the newest of a source btrfs does not know (a received chain); never one of another known source. With
 * `withPassedOver`, the server's snapshots passedOver() excludes count too: the parent it would have been. With
 * `orItself`, `snapshot` itself may be the answer (nextParent: the parent of one newer still).
 */
function chooseParent(snapshot: LocalSnapshot, input: Facts, options: { withPassedOver?: boolean; orItself?: boolean } = {}): LocalSnapshot | null {
  const usable = new Set(input.server.filter((s) => options.withPassedOver === true || passedOver(s, input) === null).map((s) => s.uuid));
  const relation = sourceRelation(snapshot, input);
  const olderOrItself = (c: LocalSnapshot) => (c.uuid === snapshot.uuid ? options.orItself === true : input.byAge(c, snapshot) < 0);
  const common = uniqueByUuid([...input.candidates, ...input.requested, snapshot])
    .filter((c) => usable.has(c.uuid) && olderOrItself(c))
    .sort(input.byAge);
  const sameSource = common.filter((c) => relation(c) === 'same');
  const ofUnknownSource = common.filter((c) => relation(c) === 'unknown');
  return (sameSource.length > 0 ? sameSource : ofUnknownSource).at(-1) ?? null;
}

/**
 * How a local snapshot stands to `snapshot` as a possible parent, by source: of its own source; of one btrfs does
 * not know, on either side (a received chain), which may serve when none of its own is held; or of another.
 */
function sourceRelation(snapshot: LocalSnapshot, input: PlanInput): (c: LocalSnapshot) => 'same' | 'unknown' | 'other' {
  const source = sourceKeys(uniqueByUuid([...input.candidates, ...input.requested, snapshot]));
  const unknown = (s: LocalSnapshot) => source.get(s.localUuid)?.startsWith('received:') ?? true;
  return (c) => {
    if (source.get(c.localUuid) === source.get(snapshot.localUuid)) return 'same';
    return unknown(c) || unknown(snapshot) ? 'unknown' : 'other';
  };
}

/**
 * A full send because what the volume holds is of another subvolume: the user may have picked the wrong volume. Only
 * for a source btrfs names on both sides (sourceRelation's 'other', the rule chooseParent passes over), and the note
 * names both subvolumes: a received copy (a restore) is of no known source, and was never the reason.
 */
function noteOtherSource(snapshot: LocalSnapshot, parent: LocalSnapshot | null, input: Facts, notes: string[]): void {
  if (parent !== null) return;
  const onServer = new Set(input.server.map((s) => s.uuid));
  const known = uniqueByUuid([...input.candidates, ...input.requested, snapshot]);
  const relation = sourceRelation(snapshot, input);
  const other = known.filter((c) => onServer.has(c.uuid) && relation(c) === 'other').sort(input.byAge).at(-1);
  if (!other) return;
  const source = sourceKeys(known);
  notes.push(
    `sending ${snapshot.name} in full: the snapshots this volume holds (${other.name}, ...) are of another subvolume ` +
      `(${other.name} is a snapshot of subvolume ${source.get(other.localUuid)}, ${snapshot.name} of ${source.get(snapshot.localUuid)}), ` +
      'and a snapshot of another subvolume is never a parent; give each source a volume of its own (--volume NAME)',
  );
}

/** Why a snapshot the server holds is never a parent in this push; null: it may be one. */
function passedOver(s: ServerSnapshotView, input: PlanInput): 'altered' | 'sealing' | 'changed_here' | null {
  if (s.altered) return 'altered';
  if (input.changedParents?.has(s.uuid) === true) return 'changed_here';
  if (!mayChainOn(input.sealing ?? null, s.sealedBy)) return 'sealing';
  return null;
}

function notePassedOverParent(snapshot: LocalSnapshot, parent: LocalSnapshot | null, input: Facts, notes: string[]): void {
  const would = chooseParent(snapshot, input, { withPassedOver: true });
  if (would === null || would.uuid === parent?.uuid) return;
  const instead = parent ? `using ${parent.name} as parent instead` : 'sending it in full instead';
  const held = input.server.find((s) => s.uuid === would.uuid);
  if (held !== undefined && passedOver(held, input) === 'changed_here') {
    notes.push(
      `${would.name} on this machine was changed after it was sent (the server refused an incremental on it: parent_changed), ` +
        `so it cannot be the parent of ${snapshot.name}: the server's copy is ${would.name} as it was sent; ${instead}`,
    );
    return;
  }
  if (held !== undefined && passedOver(held, input) === 'sealing') {
    notes.push(
      `this push is ${describeSealing(input.sealing ?? null)} and the server's ${would.name} is ${describeSealing(held.sealedBy)}, so it cannot be ` +
        `the parent of ${snapshot.name}: a chain is sealed one way throughout, so that it restores with one config; ${instead}`,
    );
    return;
  }
  const what = held?.altered?.what ?? [];
  // An archive's chain_full is the server's own rule, not a change by hand: say what it means and what follows.
  const byHand = what.filter((w) => w !== 'chain_full');
  if (byHand.length > 0) {
    notes.push(
      `the server's copy of ${would.name} was changed by hand on the server (${byHand.join(', ')}), so it cannot be the parent of ${snapshot.name}; ${instead}`,
    );
  } else {
    notes.push(
      `the archive's chain of ${would.name} is full (it holds the server's fullEvery.incrementals, or its full is older than ` +
        `fullEvery.days), so ${snapshot.name} cannot be an incremental on it and a full is sent again; ${instead}`,
    );
  }
}

function noteLostParent(snapshot: LocalSnapshot, parent: LocalSnapshot | null, input: Facts, notes: string[]): void {
  const local = new Map(uniqueByUuid([...input.candidates, ...input.requested]).map((c) => [c.uuid, c]));
  // Only a snapshot chooseParent could have taken: one of another source was never going to be the parent.
  const relation = sourceRelation(snapshot, input);
  const lost = (input.removed ?? [])
    .map((r) => ({ removed: r, local: local.get(r.uuid) }))
    .filter((x): x is { removed: ServerRemovedView; local: LocalSnapshot } => x.local !== undefined && relation(x.local) !== 'other')
    .filter((x) => input.byAge(x.local, snapshot) < 0 && (parent === null || input.byAge(x.local, parent) > 0))
    .sort((a, b) => input.byAge(a.local, b.local));
  const best = lost.at(-1);
  if (!best) return;
  const instead = parent ? `using ${parent.name} as parent instead` : 'sending it in full instead';
  notes.push(
    `the server no longer holds ${best.local.name} (${best.removed.reason}), which would have been the parent of ` +
      `${snapshot.name}; ${instead}`,
  );
}
