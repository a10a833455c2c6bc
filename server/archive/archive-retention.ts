/**
 * Retention in archive mode (docs/archive.md, "Chains and retention"): the volume's policy (the server's `retention:`
 * keys, as on a btrfs server) chooses snapshots, chains.ts's planArchiveRetention turns that into whole chains to
 * delete, and this takes them out of the bucket in an order that leaves nothing a restore could trip on:
 *
 * 1. `marked`: one compare-and-swap of the volume's catalog sets `retention.state: marked` on every member of the
 *    chains the plan gives up, the plan made again from the catalog the swap read (a stream recorded meanwhile is
 *    counted). From this swap on, views, parents and restores pass those streams over.
 * 2. `deleting`: the uploads in progress are listed again; a chain one of them names a parent in is unmarked, the rest
 *    swapped to `deleting`. Only `deleting` streams lose objects. Why two steps: a new upload checks its parent in
 *    the catalog, writes its transfer.json, then reads the catalog again (archive-admission.ts). Either its
 *    second read comes after the mark (it sees the parent gone and stops), or its transfer.json came before the mark,
 *    and then this listing, which comes after the mark, finds it. So no upload goes on from a chain being deleted.
 * 3. Each `deleting` stream's manifest and its upload's folder (transfer.json first, then the segments, state.json
 *    and lease.json last) are deleted; deleting is idempotent.
 * 4. A last swap drops the streams from the catalog and remembers their uploads under `retired` for a week, so that
 *    an instance that read such an upload complete just before (ArchiveViews.transfer) cannot record it again.
 *
 * An instance killed anywhere leaves `marked` or `deleting` streams, which the next pass of any instance (at start
 * and periodically, archive-upkeep.ts) carries on from the step they are at. Two instances doing it at once meet
 * only in swaps (each a pure function of the catalog it read) and idempotent deletes.
 *
 * Always kept, whatever the policy: the newest stream by the time it was taken and by the time it was stored (the
 * parent of the client's next incremental), and the parent of an upload in progress, as on a btrfs server
 * (server/retention.ts).
 */
import { describeError } from '../../core/errors.ts';
import type { SafeName } from '../../core/names.ts';
import { prunes, type RetentionPolicy } from '../../core/retention-policy.ts';
import type { Logger } from '../log.ts';
import type { ObjectStore } from './object-store.ts';
import { updateJson } from './json-object.ts';
import { chainsOf, planArchiveRetention } from './chains.ts';
import { asArchived, catalogKey, CATALOG_VERSION, isLive, readCatalog, VolumeCatalog, type CatalogEntry } from './volume-catalog.ts';
import { readTransferRecord, readUploadState, transferKey, type TransferRecord } from './archive-transfer.ts';
import { uploadFolder } from './upload-state.ts';
import { leaseKey } from './lease.ts';

/** How long the catalog remembers a retired upload: far longer than an instance takes from reading it complete to recording it. */
const RETIRED_MEMORY_MS = 7 * 86_400_000;

export interface VolumeRef {
  client: SafeName;
  volume: SafeName;
}

export interface PruneOptions {
  log: Logger;
  now?: Date;
  /** transfer.json objects read so far, by upload id: they are written once, so a pass reads each once. */
  records?: Map<string, TransferRecord | null>;
}

/**
 * Applies POLICY to the volume, then finishes whatever is marked or deleting in it (this pass's chains and any an
 * instance left). Returns the names of the snapshots deleted.
 */
export async function pruneArchiveVolume(objects: ObjectStore, ref: VolumeRef, policy: RetentionPolicy, options: PruneOptions): Promise<string[]> {
  const now = options.now ?? new Date();
  const records = options.records ?? new Map<string, TransferRecord | null>();
  if (prunes(policy)) {
    const uploading = await uploadsOnParents(objects, ref, records);
    const live = (await readCatalog(objects, ref.client, ref.volume)).filter(isLive);
    const plan = planArchiveRetention(asArchived(live), policy, now, protections(live, uploading));
    if (plan.deleteChains.length > 0) await markChains(objects, ref, policy, now, uploading);
  }
  return finishRetiring(objects, ref, { ...options, records });
}

/** Step 1: marks the chains the policy gives up, planned again from the catalog each swap reads. */
async function markChains(objects: ObjectStore, ref: VolumeRef, policy: RetentionPolicy, now: Date, uploading: readonly TransferRecord[]): Promise<void> {
  const at = now.toISOString();
  await updateJson(objects, catalogKey(ref.client, ref.volume), VolumeCatalog, (old) => {
    if (old === null) return { version: CATALOG_VERSION, streams: [] };
    const live = old.streams.filter(isLive);
    const plan = planArchiveRetention(asArchived(live), policy, now, protections(live, uploading));
    const going = new Set(plan.deleteChains.flatMap((c) => c.members.map((m) => m.uuid)));
    if (going.size === 0) return old;
    return { ...old, streams: old.streams.map((s) => (isLive(s) && going.has(s.uuid) ? { ...s, retention: { state: 'marked' as const, at } } : s)) };
  });
}

/** Steps 2 to 4 for every stream of the volume that is marked or deleting. */
async function finishRetiring(objects: ObjectStore, ref: VolumeRef, options: PruneOptions): Promise<string[]> {
  const { log } = options;
  const records = options.records!;
  let streams = await readCatalog(objects, ref.client, ref.volume);
  if (streams.some((s) => s.retention?.state === 'marked')) {
    // Step 2, listed after the mark (this pass's or another instance's): see the header.
    const needed = new Set((await uploadsOnParents(objects, ref, records)).map((u) => u.parentUuid!));
    streams = (await updateJson(objects, catalogKey(ref.client, ref.volume), VolumeCatalog, (old) => confirmMarks(old, needed))).value.streams;
  }
  const deleting = streams.filter((s) => s.retention?.state === 'deleting');
  if (deleting.length === 0) return [];
  for (const s of deleting) {
    await objects.delete(s.manifest);
    await deleteUploadFolder(objects, s.transferId);
  }
  const gone = new Set(deleting.map((s) => s.transferId));
  const at = (options.now ?? new Date()).toISOString();
  await updateJson(objects, catalogKey(ref.client, ref.volume), VolumeCatalog, (old) => {
    if (old === null || !old.streams.some((s) => gone.has(s.transferId) && s.retention?.state === 'deleting')) return old ?? { version: CATALOG_VERSION, streams: [] };
    const dropped = old.streams.filter((s) => gone.has(s.transferId) && s.retention?.state === 'deleting');
    const keep = (old.retired ?? []).filter((r) => Date.parse(at) - Date.parse(r.at) < RETIRED_MEMORY_MS && !gone.has(r.transferId));
    return {
      ...old, streams: old.streams.filter((s) => !dropped.includes(s)),
      retired: [...keep, ...dropped.map((s) => ({ name: s.name, uuid: s.uuid, transferId: s.transferId, at }))],
    };
  });
  const names = deleting.map((s) => s.name);
  log.info({ client: ref.client, volume: ref.volume, snapshots: names }, 'chains deleted from the archive by the retention policy');
  return names;
}

/**
 * Step 2's swap, pure: a marked chain that an upload in progress names a parent in (NEEDED) goes back to live; the
 * other marked chains go on to deleting. A chain is taken whole either way.
 */
export function confirmMarks(old: VolumeCatalog | null, needed: ReadonlySet<string>): VolumeCatalog {
  if (old === null) return { version: CATALOG_VERSION, streams: [] };
  if (!old.streams.some((s) => s.retention?.state === 'marked')) return old;
  const marked = old.streams.filter((s) => s.retention?.state === 'marked');
  const back = new Set<string>();
  for (const chain of chainsOf(asArchived(marked)).chains) {
    if (chain.members.some((m) => needed.has(m.uuid))) for (const m of chain.members) back.add(m.uuid);
  }
  return {
    ...old,
    streams: old.streams.map((s): CatalogEntry => {
      if (s.retention?.state !== 'marked') return s;
      if (back.has(s.uuid)) {
        const { retention: _unmarked, ...live } = s;
        return live;
      }
      return { ...s, retention: { state: 'deleting', at: s.retention.at } };
    }),
  };
}

/** What no policy deletes: the newest (taken, and stored) and the parents of uploads in progress. */
function protections(live: readonly CatalogEntry[], uploading: readonly TransferRecord[]): Map<string, string> {
  const protect = new Map<string, string>();
  const add = (name: string, reason: string) => protect.set(name, protect.has(name) ? `${protect.get(name)}; ${reason}` : reason);
  const archived = asArchived(live);
  const byStored = [...archived].sort((a, b) => a.storedAt.getTime() - b.storedAt.getTime()).at(-1);
  const byTaken = [...archived].sort((a, b) => a.time.getTime() - b.time.getTime()).at(-1);
  for (const newest of new Set([byStored, byTaken])) if (newest) add(newest.name, 'newest stored snapshot: the parent of the next incremental');
  for (const u of uploading) {
    const parent = live.find((s) => s.uuid === u.parentUuid);
    if (parent) add(parent.name, `parent of upload ${u.id} in progress`);
  }
  return protect;
}

/**
 * The volume's uploads in progress that name a parent: a transfer.json of the volume whose upload is neither in the
 * catalog nor a tombstone. One whose state cannot be read counts as in progress (keeping is the safe mistake).
 */
async function uploadsOnParents(objects: ObjectStore, ref: VolumeRef, records: Map<string, TransferRecord | null>): Promise<TransferRecord[]> {
  const catalogued = new Set((await readCatalog(objects, ref.client, ref.volume)).map((s) => s.transferId));
  const out: TransferRecord[] = [];
  for await (const o of objects.list('uploads/')) {
    const m = /^uploads\/([0-9a-f]{32})\/transfer\.json$/.exec(o.key);
    if (!m) continue;
    const id = m[1]!;
    if (!records.has(id)) records.set(id, await readTransferRecord(objects, id).catch(() => null));
    const record = records.get(id);
    if (!record || record.client !== ref.client || record.volume !== ref.volume || record.parentUuid === null || catalogued.has(id)) continue;
    const state = await readUploadState(objects, id).catch(() => undefined);
    if (state?.tombstone) continue;
    out.push(record);
  }
  return out;
}

/**
 * Deletes an upload's folder: transfer.json first (from then on no view finds the transfer, so nothing finishes it
 * again), then its segments and state.json, its lease.json last.
 */
export async function deleteUploadFolder(objects: ObjectStore, id: string): Promise<void> {
  const keys: string[] = [];
  for await (const o of objects.list(uploadFolder(id))) keys.push(o.key);
  const rank = (k: string) => (k === transferKey(id) ? 0 : k === leaseKey(id) ? 2 : 1);
  for (const key of [transferKey(id), ...keys.filter((k) => k !== transferKey(id))].sort((a, b) => rank(a) - rank(b))) await objects.delete(key);
}

/** Runs a volume's pruning and logs a failure instead of throwing it: the next pass tries again. */
export async function pruneLogged(objects: ObjectStore, ref: VolumeRef, policy: RetentionPolicy, options: PruneOptions): Promise<string[]> {
  try {
    return await pruneArchiveVolume(objects, ref, policy, options);
  } catch (err) {
    options.log.error({ client: ref.client, volume: ref.volume, err: describeError(err) }, 'archive retention failed; the next pass tries again');
    return [];
  }
}
