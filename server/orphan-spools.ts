/**
 * Spools that nothing will read again (issue 16): those of transfers that are over, and any left in the spool folder
 * by a transfer the catalog no longer knows. A failed transfer keeps its spool for a while, so an admin can look at
 * what was sent; every other one is deleted at once. They are counted and shown (GET /v1/status, each transfer's
 * spoolBytes, /metrics) and deleted by an abort of the failed transfer, or by the sweep once the server's expiry
 * period has passed since the transfer failed. A transfer in progress (waiting ones included) is never touched here.
 */
import fs from 'node:fs/promises';
import type { TransferState } from '../core/protocol.ts';
import { inProgress } from '../core/protocol.ts';
import { isTransferId, type ServerLayout } from './layout.ts';

/** One upload's files in the spool folder: ID, ID.json, ID.frames. */
export interface SpoolOnDisk {
  id: string;
  bytes: number;
  /** The newest modification of its files. */
  mtimeMs: number;
}

/** What the sweep needs to know of a spool's transfer. */
export interface SpoolOwner {
  client: string;
  state: TransferState;
  updatedAt: string;
}

export interface OrphanedSpool extends SpoolOnDisk {
  /** Null when the catalog knows no transfer of this id. */
  client: string | null;
  state: TransferState | null;
  /** Since when nothing wanted it: the newer of its transfer's last change and its files' last change. */
  idleSinceMs: number;
}

/** The uploads in the spool folder, with the bytes of all their files, and of their framed stream (the ID file). */
export async function spoolsOnDisk(layout: ServerLayout): Promise<(SpoolOnDisk & { streamBytes: number })[]> {
  const names = await fs.readdir(layout.spool).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  const byId = new Map<string, SpoolOnDisk & { streamBytes: number }>();
  for (const name of names) {
    const id = name.split('.')[0]!;
    if (!isTransferId(id)) continue;
    const st = await fs.stat(`${layout.spool}/${name}`).catch(() => null);
    if (st === null || !st.isFile()) continue;
    const entry = byId.get(id) ?? { id, bytes: 0, streamBytes: 0, mtimeMs: 0 };
    entry.bytes += st.size;
    if (name === id) entry.streamBytes = st.size;
    entry.mtimeMs = Math.max(entry.mtimeMs, st.mtimeMs);
    byId.set(id, entry);
  }
  return [...byId.values()];
}

/** Pure: the spools whose transfer is over, or unknown. */
export function orphansAmong(spools: readonly SpoolOnDisk[], ownerOf: (id: string) => SpoolOwner | undefined): OrphanedSpool[] {
  const out: OrphanedSpool[] = [];
  for (const s of spools) {
    const owner = ownerOf(s.id);
    if (owner && inProgress(owner.state)) continue;
    const changed = owner ? Date.parse(owner.updatedAt) : Number.NaN;
    out.push({ ...s, client: owner?.client ?? null, state: owner?.state ?? null, idleSinceMs: Math.max(s.mtimeMs, Number.isFinite(changed) ? changed : 0) });
  }
  return out;
}

/**
 * Pure: the orphans to delete now. A failed transfer's spool once `keepFailedMs` have passed (0: kept until its
 * transfer is aborted); every other one (received, aborted, unknown to the catalog) at once: nothing can use it.
 */
export function dueForDeletion(orphans: readonly OrphanedSpool[], nowMs: number, keepFailedMs: number): OrphanedSpool[] {
  return orphans.filter((o) => o.state !== 'failed' || (keepFailedMs > 0 && nowMs - o.idleSinceMs >= keepFailedMs));
}

/** Deletes an upload's files from the spool folder (those that are there). */
export async function deleteSpool(layout: ServerLayout, id: string): Promise<void> {
  await Promise.all(layout.spoolFiles(id).map((f) => fs.rm(f, { force: true })));
}

/** Bytes an upload's files take in the spool folder (0 once they are gone). */
export async function spoolBytes(layout: ServerLayout, id: string): Promise<number> {
  const sizes = await Promise.all(layout.spoolFiles(id).map((f) => fs.stat(f).then((s) => s.size, () => 0)));
  return sizes.reduce((a, b) => a + b, 0);
}
