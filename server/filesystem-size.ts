/**
 * How big the server's filesystem is in all, for telling a full disk from one too small for a stream (issue 16's
 * waits, server/receive-wait.ts `tooSmallFor`): freeing space helps the one, only a bigger filesystem the other.
 */
import fs from 'node:fs/promises';
import { mountHolding } from './mount-safety.ts';

export interface FilesystemSize {
  /** statfs's whole size (f_blocks * f_bsize): what the filesystem could hold empty, at most. */
  totalBytes: number;
  /**
   * Whether its mount compresses what is written (`compress=`, `compress-force=`): then a received snapshot may take
   * far less than its raw stream, and no size it needs can be told in advance.
   */
  compresses: boolean;
}

/** The filesystem holding `dir`, or null when it or its mount cannot be read. */
export async function filesystemSize(dir: string): Promise<FilesystemSize | null> {
  const stats = await fs.statfs(dir).catch(() => null);
  if (stats === null) return null;
  // Not known to compress or not: nothing can be told of the size a stream needs.
  const mount = await mountHolding(dir).catch(() => null);
  if (mount === null) return null;
  return { totalBytes: stats.blocks * stats.bsize, compresses: mount.superOptions.some((o) => /^compress(-force)?(=|$)/.test(o)) };
}
