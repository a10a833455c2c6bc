/**
 * The complete spool into `btrfs receive`, and the result checked before it takes the snapshot's name.
 *
 * The spool's frames are decoded and verified again on the way (FrameDecoder: every chunk's SHA-256, the chain, the
 * end frame), so bytes damaged on disk since they were downloaded never reach btrfs; the stream is checked as it
 * flows (SendStreamCheck: framing, one subvolume, END, paths that stay inside it, the parent asked for, clones only
 * from itself or that parent), its first command names the snapshot asked for, and it is renamed to a staging name.
 * `btrfs receive -e --chroot` writes into DEST_DIR under that dot name; only when the new subvolume has the expected
 * Received UUID and is read-only is it renamed to the snapshot's name (btrfs allows renaming a read-only subvolume
 * within its folder, not moving it to another). Whatever fails, the partial subvolume is deleted.
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as btrfs from '../core/btrfs/index.ts';
import { SnapferryError } from '../core/errors.ts';
import { FrameDecoder, SendStreamCheck, type SendStreamHeader } from '../core/wire/index.ts';
// A pure send-stream transform (core/wire and core/errors only) that the server's receiver uses the same way.
import { FirstCommandRenamer } from '../server/stream-rename.ts';

export interface SpoolReceive {
  framesFile: string;
  chunkSize: number;
  destDir: string;
  /** The name the restored snapshot gets in destDir. */
  name: string;
  /** The snapshot's catalog UUID: the stream's UUID, and the restored subvolume's Received UUID. */
  uuid: string;
  /** The parent's catalog UUID (a snapshot in destDir's filesystem with that identity), or null for a full stream. */
  parentUuid: string | null;
  signal?: AbortSignal;
}

export class RestoreReceiveError extends SnapferryError {}

/** The dot name a restore receives under until it is checked; the spool's own folder is `.snapferry-restore-`. */
export function stagingName(uuid: string): string {
  return `.snapferry-incoming-${uuid}`;
}

export async function receiveSpool(job: SpoolReceive): Promise<{ path: string; rawBytes: number }> {
  const finalPath = path.join(job.destDir, job.name);
  const staged = path.join(job.destDir, stagingName(job.uuid));
  // What a killed run left under our staging name is ours to delete.
  await removePartial(staged);
  if (await exists(finalPath)) {
    throw new RestoreReceiveError('restore_target_exists', `${finalPath} already exists; move it away or restore into another folder`, { details: { path: finalPath } });
  }
  const check = checkFor(job);
  const raw = new PassThrough();
  const received = btrfs.receive(job.destDir, raw, { chroot: true, endOnEndCommand: true, ...(job.signal ? { signal: job.signal } : {}) });
  try {
    await Promise.all([
      pipeline(createReadStream(job.framesFile), new FrameDecoder({ chunkSize: job.chunkSize }), check, new FirstCommandRenamer(stagingName(job.uuid)), raw),
      received,
    ]);
    const shown = await btrfs.subvolumeShow(staged);
    if (shown.receivedUuid !== job.uuid) {
      throw new RestoreReceiveError('receive_unchecked', `btrfs receive finished but ${job.name} has Received UUID ${shown.receivedUuid ?? 'none'}, not ${job.uuid}`);
    }
    if (!shown.readonly) throw new RestoreReceiveError('receive_unchecked', `btrfs receive finished but ${job.name} is not read-only`);
    await fs.rename(staged, finalPath);
    return { path: finalPath, rawBytes: check.summary?.bytes ?? 0 };
  } catch (err) {
    raw.destroy();
    await received.catch(() => undefined);
    await removePartial(staged);
    throw err instanceof SnapferryError ? err : new RestoreReceiveError('receive_failed', `receiving ${job.name} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** The stream's checks: framing, the restore's policy, and its first command against what was asked for. */
function checkFor(job: SpoolReceive): SendStreamCheck {
  const check = new SendStreamCheck({
    policy: {
      parentUuid: job.parentUuid,
      // The server sends with -p only: clones come from the snapshot itself or from its parent.
      cloneSources: job.parentUuid === null ? [] : [job.parentUuid],
      // A restore puts back what was backed up, setuid binaries and device nodes included, as the push took them.
      allowDevices: true,
      allowSetuid: true,
    },
  });
  check.once('header', (header: SendStreamHeader) => {
    if (header.uuid === job.uuid) return;
    check.destroy(new RestoreReceiveError('stream_metadata_mismatch', `the stream is snapshot ${header.uuid}, not ${job.name} (${job.uuid})`, { details: { found: header.uuid, expected: job.uuid } }));
  });
  return check;
}

/** Deletes what an interrupted or failed `btrfs receive` left under the staging name. */
async function removePartial(staged: string): Promise<void> {
  if (await btrfs.isSubvolume(staged)) await btrfs.deleteSubvolume(staged);
  else await fs.rm(staged, { recursive: true, force: true });
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}
