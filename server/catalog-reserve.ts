/**
 * Room kept for the catalog on a disk that fills up. The catalog takes back a change it could not write
 * (server/catalog.ts), so on a disk with no byte free no state could be recorded at all: a whole stream whose receive
 * found the disk full could not be put to wait, and its push could not be told. Beside the catalog lies a reserve
 * file (random bytes, so that a compressing mount cannot shrink it); a write that finds the disk full deletes it and
 * writes again, and the reserve is made again by the next write once there is room.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isDiskFull } from '../core/disk-full.ts';
import { syncFolder, writeFileDurably } from '../core/durable-file.ts';

/** At least this much, and twice the catalog: the new catalog is written beside the old one before the rename. */
const RESERVE_MIN_BYTES = 1024 * 1024;

/** Writes the catalog `file` durably, giving the reserve's room to it when the disk is full. */
export async function writeWithReserve(file: string, text: string): Promise<void> {
  const reserve = `${file}.reserve`;
  try {
    await writeFileDurably(file, text);
  } catch (err) {
    if (!isDiskFull(err)) throw err;
    const had = await fs.rm(reserve).then(() => true, () => false);
    if (!had) throw err;
    // The deletion committed, so that the filesystem counts its room as free.
    await syncFolder(path.dirname(file));
    await writeFileDurably(file, text);
    return;
  }
  await keepReserve(reserve, Math.max(RESERVE_MIN_BYTES, 2 * Buffer.byteLength(text)));
}

/** Makes the reserve again when it is missing or too small; on a disk still too full, leaves none (no partial one). */
async function keepReserve(reserve: string, bytes: number): Promise<void> {
  const size = await fs.stat(reserve).then((st) => st.size, () => -1);
  if (size >= bytes) return;
  await fs.writeFile(reserve, crypto.randomBytes(bytes), { mode: 0o600 }).catch(() => fs.rm(reserve, { force: true }));
}
