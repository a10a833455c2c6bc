/**
 * What the disk says now of the snapshots the catalog holds, looked at where it matters: a snapshot an admin deleted
 * by hand leaves the catalog (so no client picks it as a parent), and a parent changed by hand (made writable, its
 * Received UUID cleared) is flagged (server/alterations.ts), so the creation checks refuse it.
 */
import * as btrfs from '../core/btrfs/index.ts';
import type { SafeName } from '../core/names.ts';
import type { Catalog, SnapshotRecord, TransferRecord } from './catalog.ts';
import type { ServerLayout } from './layout.ts';
import type { Logger } from './log.ts';
import { changedSinceReceived, describeAlterations, judgeSnapshot, type Verdict } from './alterations.ts';
import { failOnMissingParent } from './transfers/machine.ts';
import type { ParentAsReceived } from './stream-start.ts';

export interface DiskTruth {
  catalog: Catalog;
  layout: ServerLayout;
  log: Logger;
}

/**
 * Removes from the catalog the client's snapshots in `volume` that are no longer subvolumes (two cheap syscalls each),
 * and fails the uploads built on one of them.
 */
export async function refreshVolume(disk: DiskTruth, client: SafeName, volume: SafeName): Promise<void> {
  const { catalog, layout, log } = disk;
  for (const s of catalog.snapshots(client, volume)) {
    // Retention records its own deletions, with their reason, once they are done.
    if (catalog.beingDeleted(s)) continue;
    if (!(await btrfs.isSubvolume(layout.snapshotPath(client, volume, s.name as SafeName)))) {
      await catalog.removeSnapshot(s, 'deleted from disk');
      log.warn({ volume, snapshot: s.name }, 'snapshot gone from disk; removed from the catalog');
    }
  }
  await failUploadsWithoutParent(disk, { client, volume });
}

/**
 * Fails every upload (of `where`, or all) whose parent the catalog no longer holds (machine.failOnMissingParent): it
 * held its volume for ever. Its receive stops as it fails (Catalog.onTransferEnd); its spool stays until it expires.
 */
export async function failUploadsWithoutParent({ catalog, log }: Pick<DiskTruth, 'catalog' | 'log'>, where?: { client: SafeName; volume: SafeName }): Promise<void> {
  for (const t of catalog.transfers(where)) {
    const change = failOnMissingParent(t, catalog.snapshots(t.client, t.volume), new Date().toISOString());
    if (change === null) continue;
    await catalog.updateTransfer(t.id, change);
    log.warn({ transfer: t.id, volume: t.volume, snapshot: t.snapshot, parentUuid: t.parentUuid }, change.error?.message ?? 'parent_missing');
  }
}

/**
 * What the disk says of a snapshot now (server/alterations.ts). With `ctransid`, it is read where btrfs send can (a
 * read-only subvolume; a writable one is flagged for that already), and a record without one learns it here. Start-up
 * reads none: one btrfs send each (about 0.1 s, and a commit) would hold serve's start for minutes on a root of
 * thousands of snapshots; a restore's own send and a push's parent are where a change must be seen.
 */
export async function lookAtSnapshot(
  { catalog, layout }: Pick<DiskTruth, 'catalog' | 'layout'>,
  record: SnapshotRecord,
  { readCtransid = true }: { readCtransid?: boolean } = {},
): Promise<Verdict> {
  const p = layout.snapshotPath(record.client as SafeName, record.volume as SafeName, record.name as SafeName);
  const shown = await btrfs.subvolumeShow(p).catch(() => null);
  const ctransid = readCtransid && shown?.readonly ? await btrfs.ctransidOf(p).catch(() => null) : null;
  const verdict = judgeSnapshot(record, shown && { ...shown, ctransid });
  if (verdict.kind === 'intact' && record.ctransid === undefined && ctransid !== null) await catalog.noteCtransid(record, ctransid);
  return verdict;
}

/**
 * A snapshot as the server's own btrfs send of it (a restore's) says it is now: its ctransid against the one it was
 * received at. Changed since, it is flagged and returned as flagged; else null (a record without a ctransid learns
 * it). Its send, already running, says this at no cost, and at the last moment before its bytes go out.
 */
export async function lookAtSent({ catalog, log }: Pick<DiskTruth, 'catalog' | 'log'>, client: SafeName, volume: SafeName, uuid: string, ctransid: number): Promise<SnapshotRecord | null> {
  const record = catalog.snapshots(client, volume).find((s) => s.uuid === uuid);
  if (!record) return null;
  if (record.ctransid === undefined) {
    await catalog.noteCtransid(record, ctransid);
    return null;
  }
  if (!changedSinceReceived(record, ctransid)) return null;
  const flagged = await catalog.markAltered(record, ['changed_since_received']);
  log.warn({ client, volume, snapshot: record.name, altered: flagged.altered, ctransid, receivedAt: record.ctransid }, `received snapshot changed by hand: it ${describeAlterations(['changed_since_received'])}; kept, but never restored nor used as a parent`);
  return flagged;
}

/** The parent a new incremental names, as the disk has it now: flagged in the catalog when it was changed by hand. */
export async function lookAtParent(disk: DiskTruth, client: SafeName, volume: SafeName, parentUuid: string): Promise<void> {
  const { catalog, log } = disk;
  const record = catalog.snapshots(client, volume).find((s) => s.uuid === parentUuid);
  if (!record) return;
  const verdict = await lookAtSnapshot(disk, record);
  if (verdict.kind !== 'altered') return;
  const current = catalog.snapshots(client, volume).find((s) => s.uuid === parentUuid);
  if (!current) return;
  const flagged = await catalog.markAltered(current, verdict.what);
  log.warn({ client, volume, snapshot: record.name, altered: flagged.altered }, `received snapshot changed by hand: it ${describeAlterations(flagged.altered?.what ?? [])}; kept, but never used as a parent`);
}

/**
 * The parent transfer `t` names, as the disk has it now: its name and Send transid (server/stream-start.ts
 * parentChangedProblem). Null for a full send, or when the catalog or the disk has no such subvolume, or `subvolume
 * show` fails: nothing to compare then, and a stream is not refused on a doubt of the server's own (a missing parent
 * fails its receive anyway, as btrfs receive cannot find it).
 */
export async function parentAsReceived({ catalog, layout }: Pick<DiskTruth, 'catalog' | 'layout'>, t: TransferRecord): Promise<ParentAsReceived | null> {
  if (t.parentUuid === null) return null;
  const record = catalog.snapshots(t.client, t.volume).find((s) => s.uuid === t.parentUuid);
  if (!record) return null;
  const shown = await btrfs.subvolumeShow(layout.snapshotPath(t.client as SafeName, t.volume as SafeName, record.name as SafeName)).catch(() => null);
  return shown === null ? null : { name: record.name, sendTransid: shown.sendTransid };
}
