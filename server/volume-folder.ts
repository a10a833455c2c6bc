/**
 * What a receive wrote in its volume's folder besides its subvolume. `btrfs receive --chroot` runs in the volume's
 * folder (ROOT/volumes/CLIENT/VOLUME), and must: clone sources are opened from outside the chroot, so only a chroot
 * that holds them (this folder) keeps a symlink in a clone source's path from leading to another client's files
 * (server/replication.ts receivePolicy). But a stream can write through its own symlinks anywhere the chroot reaches:
 * with `up -> /` in the new subvolume, `up/x` is this folder's x. One receive runs in a volume at a time
 * (volume_busy), so what appeared in the folder while it ran, it wrote: that goes when the receive ends, received or
 * failed, but for what the catalog says others hold there (othersInFolder). What was there before stays, under
 * whatever name (an admin's subvolume where the snapshot should go, say).
 *
 * The record of what was there before is on disk (ROOT/receiving/ID.json, outside every chroot), written durably
 * before the receive starts and removed once its cleanup is done: a server killed mid-receive finds it at its next
 * start, and deletes then what the cut receive wrote (recoverCutReceives).
 */
import fs from 'node:fs/promises';
import { readJsonFile, syncFolder, writeFileDurably } from '../core/durable-file.ts';
import path from 'node:path';
import { z } from 'zod';
import { folderContents, folderEntries as entries, removeAdded, type FolderContents } from '../core/receive/added-entries.ts';
import { isSafeName, type SafeName } from '../core/names.ts';
import type { Catalog } from './catalog.ts';
import { isTransferId, type ServerLayout } from './layout.ts';
import { holdsVolume, type ReceivingNow } from './transfers/volume-hold.ts';

/** What a receive added to the folder, by identity; the diff itself is core's (core/receive/added-entries.ts). */
export type FolderSnapshot = FolderContents;
export { folderContents, removeAdded };

// --- what is not a receive's to delete -------------------------------------------------------------------------------

/**
 * The names in the folder of `client`/`volume` that are others' than transfer `id`'s, as the catalog has them: the
 * snapshots it records there, and the staging and final names of the volume's other transfers that hold it
 * (server/transfers/volume-hold.ts: one may be renaming its checked snapshot into place before it is recorded). The cleanup of `id`'s receive keeps them
 * though they appeared while it ran: one receive per volume at a time is what makes "appeared meanwhile" mean
 * "written by this receive", and a cleanup must not bet a received snapshot on that rule having held. The live
 * receive's cleanup and the one at start after a crash (recoverCutReceives) both ask this.
 */
export function othersInFolder(
  catalog: Pick<Catalog, 'snapshots' | 'transfers'>, layout: ServerLayout, client: string, volume: string, id: string, receiving: ReceivingNow,
): string[] {
  const others = catalog.transfers({ client, volume }).filter((t) => t.id !== id && holdsVolume(t, receiving));
  return [
    ...catalog.snapshots(client, volume).map((s) => s.name),
    ...others.flatMap((t) => [layout.incomingName(t.id), t.snapshot]),
  ];
}

/** othersInFolder, for the transfer `id` whose receive wrote in the folder of `client`/`volume`. */
export type OthersInFolder = (client: SafeName, volume: SafeName, id: string) => readonly string[];

// --- the record on disk ----------------------------------------------------------------------------------------------

const FolderRecord = z.object({
  version: z.literal(1),
  client: z.string().refine(isSafeName),
  volume: z.string().refine(isSafeName),
  entries: z.array(z.object({ name: z.string(), id: z.string() })),
});
type FolderRecord = z.infer<typeof FolderRecord>;

/** The record in `file`, or null when there is none, or none that can be read (a record half written is none). */
/**
 * Records what `dir` (the folder of `client`/`volume`) holds, in `file`, durably, before a receive there starts;
 * returns it. A record this transfer's last receive left (its cleanup failed) stands: it says what was there before.
 */
export async function recordFolder(file: string, dir: string, client: SafeName, volume: SafeName): Promise<FolderSnapshot> {
  const left = await readJsonFile(file, FolderRecord);
  if (left?.client === client && left.volume === volume) return new Set(left.entries.map((e) => e.id));
  const record: FolderRecord = { version: 1, client, volume, entries: await entries(dir) };
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileDurably(file, JSON.stringify(record));
  return new Set(record.entries.map((e) => e.id));
}

/** The receive's cleanup is done: its record goes (for good, so that a power cut cannot bring it back). */
export async function forgetFolder(file: string): Promise<void> {
  await fs.rm(file, { force: true });
  await syncFolder(path.dirname(file)).catch(() => undefined);
}

export interface CutReceive {
  transferId: string;
  client: SafeName;
  volume: SafeName;
  /** The names deleted from the volume's folder. */
  removed: string[];
}

/**
 * At start, before any receive runs: a record left in ROOT/receiving is a receive the server's death cut short. What
 * it wrote in its folder is deleted: every entry not in the record, but for what `others` names (othersInFolder: a
 * snapshot may have taken its name just before the crash). A record that cannot be read deletes nothing.
 */
export async function recoverCutReceives(layout: ServerLayout, others: OthersInFolder): Promise<CutReceive[]> {
  // Made now, before any receive: the folder is part of the server's root from its start.
  await fs.mkdir(layout.receiving, { recursive: true, mode: 0o700 });
  const out: CutReceive[] = [];
  const names = await fs.readdir(layout.receiving);
  for (const name of names) {
    const id = name.replace(/\.json$/, '');
    const file = path.join(layout.receiving, name);
    if (!isTransferId(id) || name !== `${id}.json`) {
      // A temporary file whose rename a crash prevented: its receive never started.
      if (name.endsWith('.json.tmp')) await fs.rm(file, { force: true });
      continue;
    }
    const record = await readJsonFile(file, FolderRecord);
    if (record !== null) {
      const client = record.client as SafeName;
      const volume = record.volume as SafeName;
      const before = new Set(record.entries.map((e) => e.id));
      const removed = await removeAdded(layout.volumeDir(client, volume), before, others(client, volume, id));
      out.push({ transferId: id, client, volume, removed });
    }
    await forgetFolder(file);
  }
  return out;
}
