/**
 * A restore that fills the disk it restores onto: the spool's frames or `btrfs receive` hit ENOSPC (or a quota's
 * EDQUOT). Nothing is lost (every spooled frame was made durable before it was recorded), so it is a temporary
 * failure (exit 75, client/exit-codes.ts) once space is freed; the restore's own retry loop does not wait for that
 * (nothing frees the space by itself), so the error is not retryable, and it says which disk, how much the restore
 * still needs there, and that the same command resumes.
 */
import fs from 'node:fs/promises';
import { SnapferryError } from '../../core/errors.ts';
import { isDiskFull } from '../../core/disk-full.ts';
import { pushedSizeKnown, type Snapshot } from '../../core/protocol.ts';
import { formatBytes } from '../progress/format.ts';
import { RESTORE_DISK_FULL } from '../exit-codes.ts';


export class RestoreDiskFull extends SnapferryError {}

export interface DiskFullContext {
  destDir: string;
  /** Where the btrfs filesystem that holds destDir is mounted. */
  mountPoint: string;
  target: Snapshot;
  /**
   * The snapshot the restore's stream is an incremental from (null: a full stream). On the push's own parent, the
   * catalog's sizes are the restore's too; on any other, or full, they are the push's only.
   */
  streamParent: Pick<Snapshot, 'name' | 'uuid'> | null;
  /** The spool's folder and the wire bytes verified in it, or null when the spool could not even be made. */
  spool: { dir: string; wireBytes: number; complete: boolean } | null;
}

/** `err` as a RestoreDiskFull when the disk under destDir is full, else unchanged. */
export async function asRestoreDiskFull(err: unknown, at: DiskFullContext): Promise<unknown> {
  if (!isDiskFull(err) || (err instanceof SnapferryError && err.code === RESTORE_DISK_FULL)) return err;
  const free = await fs.statfs(at.destDir).then((s) => s.bavail * s.bsize, () => null);
  const spooled = at.spool?.wireBytes ?? 0;
  // The spool stays until the received snapshot is checked, so both take room at the same time.
  const rest = at.spool?.complete ? 0 : Math.max(0, at.target.wireBytes - spooled);
  const sizesKnown = (at.streamParent?.uuid ?? null) === at.target.parentUuid && pushedSizeKnown(at.target);
  const need = sizesKnown
    ? `about ${formatBytes(rest + at.target.rawBytes)} more (${rest > 0 ? `the rest of the download, about ${formatBytes(rest)}, and ` : ''}the received snapshot, up to ${formatBytes(at.target.rawBytes)})`
    : `more (${unknownNeed(at.target, at.streamParent)})`;
  const kept = at.spool === null ? '' : `; the download is kept in ${at.spool.dir}, and the same restore run again goes on from the ${formatBytes(spooled)} of it already verified`;
  return new RestoreDiskFull(
    RESTORE_DISK_FULL,
    `the disk of ${at.destDir} (the filesystem mounted at ${at.mountPoint}) is full${free === null ? '' : ` (${formatBytes(free)} free)`}: restoring ${at.target.name} needs ${need}. ` +
      `Free space there, or restore into a folder on another disk${kept}`,
    { cause: err, details: { destDir: at.destDir, mountPoint: at.mountPoint, freeBytes: free, spooledBytes: spooled } },
  );
}

/**
 * Why the catalog cannot say how much a stream on another plan than the push's needs, and what it does know. Its
 * rawBytes is the push's stream: the whole snapshot only when the push was full; after an incremental push, only
 * what changed since that push's parent, which says nothing of what a full stream or another parent's brings.
 */
function unknownNeed(target: Snapshot, streamParent: Pick<Snapshot, 'name'> | null): string {
  if (!pushedSizeKnown(target)) {
    return `how much is not known beforehand: the server adopted ${target.name} from its disk without the record of its push, so it knows no size of it; ` +
      `free at least what ${target.name} holds where it was taken (its \`du -s\` there), plus its download, which stays until the receive is checked`;
  }
  const pushed = formatBytes(target.rawBytes);
  if (streamParent === null) {
    // The push was an incremental (else the plans would be the same): its size is not the snapshot's.
    return `how much is not known beforehand: this is a full stream, the whole snapshot, and the server knows only the ${pushed} of the incremental it was pushed as; ` +
      `free at least what ${target.name} holds where it was taken (its \`du -s\` there), plus its download, which stays until the receive is checked`;
  }
  const fromParent = `how much is not known beforehand: the stream is an incremental from ${streamParent.name}, another parent than the push's`;
  return target.parentUuid === null
    ? `${fromParent}; the whole snapshot holds ${pushed} (it was pushed full), so no more than that`
    : `${fromParent}, and the server knows only the ${pushed} of the incremental it was pushed as`;
}
