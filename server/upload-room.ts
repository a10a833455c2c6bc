/**
 * Whether an upload that found the server's disk full could ever fit on its filesystem. Mid-upload a full disk is a
 * pause (server/disk-full.ts: 507, free space and the upload goes on); but when the spool alone, by the client's
 * estimate of the stream (its rawEstimate), is more than the filesystem's whole size, no space freed can be enough,
 * and a push told to free space and try again later (exit 75) was told so on every run, for ever. Then the refusal
 * says the filesystem is too small, as a whole stream's receive does (server/receive-wait.ts tooSmallFor), and that
 * retrying cannot help.
 */
import { SnapferryError } from '../core/errors.ts';
import type { Catalog } from './catalog.ts';
import { FILESYSTEM_TOO_SMALL } from './disk-full.ts';
import { filesystemSize, type FilesystemSize } from './filesystem-size.ts';
import type { ServerLayout } from './layout.ts';
import type { Logger } from './log.ts';
import { spoolBytes } from './orphan-spools.ts';
import type { Spool } from './spool/spool.ts';

export interface UploadSoFar {
  /** Bytes the upload's files take in the spool folder now (stream, frame index, tus's record). */
  spoolBytes: number;
  /** What its verified frames hold: wire bytes, and the raw stream bytes they carry. */
  wireOffset: number;
  rawBytes: number;
  /** The client's estimate of the raw stream's length (upload metadata), or null when it sent none. */
  rawEstimate: number | null;
}

/**
 * Pure: about how many bytes the upload's spool holds once the stream is whole, or null when that cannot be told:
 * no estimate, or no frame verified yet to say how the client's compression shrinks the stream on the wire (the spool
 * holds wire bytes, the estimate counts raw ones). The frame in flight that spoolBytes may hold is counted twice:
 * at most a frame over, where btrfs's own metadata already keeps a stream that close to the size from fitting.
 */
export function spoolWhenWhole(u: UploadSoFar): number | null {
  if (u.rawEstimate === null || u.rawBytes <= 0) return null;
  const restRaw = Math.max(0, u.rawEstimate - u.rawBytes);
  return u.spoolBytes + Math.ceil(restRaw * (u.wireOffset / u.rawBytes));
}

/**
 * Pure: the bytes the upload needs when they are more than the filesystem's whole size, else null (it may fit once
 * space is freed, or cannot be told). Not judged where the mount compresses: the spool may take less than its bytes.
 */
export function tooBigFor(u: UploadSoFar, disk: FilesystemSize | null): number | null {
  const need = spoolWhenWhole(u);
  if (need === null || disk === null || disk.compresses) return null;
  return need > disk.totalBytes ? need : null;
}

/** The refusal of an upload too big for the server's filesystem (tooBigFor), `cause` the full disk's. */
export function uploadTooSmall(root: string, u: UploadSoFar, need: number, totalBytes: number, cause: unknown): SnapferryError {
  return new SnapferryError(
    FILESYSTEM_TOO_SMALL,
    `the server's filesystem is too small for this stream: its upload needs about ${mib(need)} (its spool so far, ` +
      `${mib(u.spoolBytes)}, and the rest of the stream by the client's estimate of ${mib(u.rawEstimate ?? 0)} raw), and the ` +
      `filesystem of ${root} is ${mib(totalBytes)} in all, so no space freed there can make room; its receive needs about ` +
      `${mib(u.rawEstimate ?? 0)} more beside the spool. Give the server root a bigger disk (grow its btrfs: \`btrfs device ` +
      'add`, or `btrfs filesystem resize max` on a larger device), then push again: the upload goes on from where it ' +
      'stopped, and nothing the server holds is sent again',
    { cause, retryable: false, details: { spoolBytes: u.spoolBytes, neededBytes: need, rawEstimate: u.rawEstimate, filesystemBytes: totalBytes } },
  );
}

export interface UploadRoomDeps {
  layout: ServerLayout;
  catalog: Catalog;
  spool: Spool;
  log: Logger;
}

/**
 * What a full disk means for upload `id`: the too-small refusal, or null for the usual pause. Looked at only once
 * the disk is full, so a 507 costs a statfs and a read of the frame index's end.
 */
export function uploadRoom(deps: UploadRoomDeps): (id: string, cause: unknown) => Promise<SnapferryError | null> {
  const { layout, catalog, spool, log } = deps;
  return async (id, cause) => {
    const t = catalog.transfer(id);
    if (t === undefined) return null;
    const [progress, bytes, disk] = await Promise.all([spool.progress(id), spoolBytes(layout, id), filesystemSize(layout.spool)]);
    const u: UploadSoFar = { spoolBytes: bytes, wireOffset: progress.wireOffset, rawBytes: progress.rawBytes, rawEstimate: t.rawEstimate };
    const need = tooBigFor(u, disk);
    if (need === null || disk === null) return null;
    const err = uploadTooSmall(layout.root, u, need, disk.totalBytes, cause);
    log.warn({ transfer: id, ...err.details }, err.message);
    return err;
  };
}

function mib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
