/**
 * The catalog meets the disk at start (docs/design.md, "Crash recovery and start-up"): an admin may have deleted received subvolumes by hand,
 * the server may have died mid-receive (a partial subvolume in a staging folder, and whatever the stream wrote beside
 * it through its own symlinks) or just after moving a snapshot into place but before recording it, or before the
 * end of an upload reached the catalog on disk. Returns the transfers whose whole stream must be received (again).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import * as btrfs from '../core/btrfs/index.ts';
import { isSafeName, type SafeName } from '../core/names.ts';
import { inProgress } from '../core/protocol.ts';
import type { Catalog } from './catalog.ts';
import type { ServerLayout } from './layout.ts';
import type { Logger } from './log.ts';
import type { SpoolProgress } from './spool/progress.ts';
import { completedUpload } from './transfers/machine.ts';
import { removePartial } from '../core/receive/checked-receive.ts';
import { INCOMING_PREFIX } from './layout.ts';
import { othersInFolder, recoverCutReceives } from './volume-folder.ts';
import { toDiskMap } from './uuid-namespace.ts';
import { describeAlterations } from './alterations.ts';
import { lookAtSnapshot } from './disk-truth.ts';

async function listDirs(dir: string): Promise<string[]> {
  try {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** The verified progress of an upload's spool (server/spool/spool.ts `progress`). */
export type SpoolProgressOf = (id: string) => Promise<SpoolProgress>;

export async function reconcile(layout: ServerLayout, catalog: Catalog, progressOf: SpoolProgressOf, log: Logger): Promise<string[]> {
  // Snapshots the catalog lists but the disk no longer has (or has as something else), and those changed by hand:
  // flagged and kept (server/alterations.ts).
  for (const s of catalog.allSnapshots()) {
    const verdict = await lookAtSnapshot({ catalog, layout }, s, { readCtransid: false });
    if (verdict.kind === 'gone') {
      await catalog.removeSnapshot(s, verdict.reason);
      log.warn({ volume: s.volume, snapshot: s.name, reason: verdict.reason }, 'snapshot gone from disk; removed from the catalog');
    } else if (verdict.kind === 'altered') {
      const flagged = await catalog.markAltered(s, verdict.what);
      log.warn(
        { client: s.client, volume: s.volume, snapshot: s.name, altered: flagged.altered },
        `received snapshot changed by hand: it ${describeAlterations(flagged.altered?.what ?? verdict.what)}; kept, but never used as a parent`,
      );
    }
  }

  // Before the adoptions below, which copy a transfer's figures into the snapshot they record.
  await completeWholeUploads(catalog, progressOf, log);

  // Partial receives cut by a crash: deleted here; their transfers are still `receiving`, so they run again.
  for (const client of (await listDirs(layout.volumes)).filter(isSafeName)) {
    for (const volume of (await listDirs(path.join(layout.volumes, client))).filter(isSafeName)) {
      const dir = layout.volumeDir(client, volume);
      for (const name of (await listDirs(dir)).filter((n) => n.startsWith(INCOMING_PREFIX))) {
        await removePartial(path.join(dir, name));
        log.warn({ staged: name, volume }, 'removed a partial receive left by a crash');
      }
      await adoptUnrecorded(layout, catalog, client, volume, log);
    }
  }
  // What those receives wrote beside their subvolumes, through their own symlinks; snapshots just adopted stay. No
  // receive runs yet: only the catalog says who holds a folder.
  const others = (client: SafeName, volume: SafeName, id: string) => othersInFolder(catalog, layout, client, volume, id, () => false);
  for (const cut of await recoverCutReceives(layout, others)) {
    if (cut.removed.length > 0) log.warn({ transfer: cut.transferId, volume: cut.volume, removed: cut.removed }, 'removed what a receive cut by a crash wrote in its volume\'s folder');
  }
  // Whole streams: cut short in their receive, or waiting for one. (A spool whose transfer is over, received just
  // before a crash say, is the orphan sweep's: server/orphan-spools.ts.)
  return catalog.transfers().filter((t) => inProgress(t.state) && t.state !== 'uploading').map((t) => t.id);
}

/** A snapshot moved into place whose catalog entry was lost to a crash: record it from what the disk says. */
async function adoptUnrecorded(layout: ServerLayout, catalog: Catalog, client: SafeName, volume: SafeName, log: Logger): Promise<void> {
  const known = new Set(catalog.snapshots(client, volume).map((s) => s.name));
  for (const name of (await listDirs(layout.volumeDir(client, volume))).filter(isSafeName)) {
    if (known.has(name)) continue;
    const shown = await btrfs.subvolumeShow(layout.snapshotPath(client, volume, name)).catch(() => null);
    if (!shown?.receivedUuid || !shown.readonly) continue;
    // Its transfer says which client UUID it is: the one whose Received UUID on disk it has (server/uuid-namespace.ts).
    const toDisk = toDiskMap(catalog, client);
    const transfer = catalog.transfers({ client, volume }).find((t) => toDisk(t.uuid) === shown.receivedUuid);
    // Without its transfer (long forgotten, or lost with the catalog) only the Received UUID is left, which is not
    // the client's UUID and cannot be computed back to it: recorded as unknown, the Received UUID standing in, until
    // the client names its UUID (Catalog.learnUuids; server/uuid-namespace.ts).
    const id = transfer ? { uuid: transfer.uuid } : { uuid: shown.receivedUuid, uuidUnknown: true as const };
    await catalog.addSnapshot({
      client, volume, name, ...id, receivedUuid: shown.receivedUuid,
      serverUuid: shown.uuid, parentUuid: transfer?.parentUuid ?? null,
      receivedAt: new Date().toISOString(), rawBytes: transfer?.rawBytes ?? 0, wireBytes: transfer?.wireBytes ?? 0,
      transferId: transfer?.id ?? null, createdAt: transfer?.snapshotCreatedAt ?? null, takenAt: transfer?.snapshotTakenAt ?? null,
      altered: null,
    });
    if (transfer && transfer.state !== 'received') await catalog.updateTransfer(transfer.id, { state: 'received', error: null });
    log.warn({ volume, snapshot: name }, 'recorded a received snapshot missing from the catalog');
  }
}

/**
 * Uploads whose spool holds the verified end frame but whose record still says `uploading`: the end frame's save
 * had not reached the disk when the server died (it may come after the PATCH is answered, and its fsync waits behind
 * whatever btrfs receive is writing). Moved on now as the end frame would have (machine.completedUpload), final
 * figures and all: left `uploading`, the stream was received again all the same, but as an upload, shown as one
 * (`status`: uploading, at its estimate's percentage), and recorded `received` without its figures (0 B in the
 * push's received line, in GET /v1/transfers and in the /metrics byte counters).
 */
async function completeWholeUploads(catalog: Catalog, progressOf: SpoolProgressOf, log: Logger): Promise<void> {
  for (const t of catalog.transfers().filter((x) => x.state === 'uploading' || x.state === 'verifying')) {
    const progress = await progressOf(t.id).catch(() => null);
    const change = progress && completedUpload(t, progress);
    if (!change) continue;
    await catalog.updateTransfer(t.id, change);
    log.warn({ transfer: t.id, volume: t.volume, snapshot: t.snapshot, wireBytes: change.wireBytes, framesVerified: change.framesVerified },
      'the upload\'s end frame was in its spool but not on record (a crash came first); recorded now, the stream is received from the spool');
  }
}
