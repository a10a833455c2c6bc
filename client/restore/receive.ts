/**
 * The complete spool into `btrfs receive`, through the one checked receive both sides use (core/receive).
 *
 * The spool's frames are decoded and verified again on the way (FrameDecoder: every chunk's SHA-256, the chain, the
 * end frame), so bytes damaged on disk since they were downloaded never reach btrfs; the stream is checked as it
 * flows (SendStreamCheck: framing, one subvolume, END, paths that stay inside it, the parent asked for, clones only
 * from itself or that parent), and its first command names the snapshot asked for. What is the restore's own is
 * here: its spool, its policy, its staging name and what it says when the name is taken; the receive, the checks
 * after it and the removal of a partial subvolume are core/receive/checked-receive.ts's.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream';
import { checkedReceive } from '../../core/receive/checked-receive.ts';
import { parentEntries } from '../../core/receive/parent-entries.ts';
import { SnapferryError } from '../../core/errors.ts';
import { FrameDecoder, SendStreamCheck, streamIdentity, type SendStreamHeader } from '../../core/wire/index.ts';
import type { SealKey } from '../../core/crypto/keys.ts';

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
  /** The local parent snapshot (the one with parentUuid's identity), whose symlinks the stream must not reach through. */
  parentPath?: string;
  /** That parent's own UUID here: the received snapshot must have been received on it, not on another copy. */
  parentLocalUuid?: string;
  signal?: AbortSignal;
  /** Opens a sealed stream (bound to uuid and parentUuid); without it a sealed stream is refused at its first frame. */
  sealKey?: SealKey;
}

export class RestoreReceiveError extends SnapferryError {}

/** The dot name a restore receives under until it is checked; the spool's own folder is `.snapferry-restore-`. */
export function stagingName(uuid: string): string {
  return `.snapferry-incoming-${uuid}`;
}

/**
 * The dot name a received snapshot waits under for the restore's final check (client/restore/restore.ts): whole and
 * read-only, received from a spool that verified, but not yet compared with the server's digest. A run that finds it
 * checks it without downloading again; only a check that passed gives it the snapshot's name.
 */
export function uncheckedName(uuid: string): string {
  return `.snapferry-unchecked-${uuid}`;
}

const DIFFERS_PREFIX = '.snapferry-differs-';
/** A file name's most bytes (NAME_MAX); a snapshot's name may take all of them (names are ASCII: a char is a byte). */
const NAME_MAX = 255;
/** Left free for the `-2`, `-3`, ... that a copy kept beside an earlier one gets (restore.ts freeName). */
const SUFFIX_ROOM = 4;

/**
 * The dot name a restored snapshot that failed the final check is kept under for inspection, never the snapshot's.
 * A long name is cut to fit: whole, the rename failed with ENAMETOOLONG, the restore exited 1 instead of 3 and left
 * the copy unchecked for every later run to fail on the same way.
 */
export function differsName(name: string): string {
  return `${DIFFERS_PREFIX}${name.slice(0, NAME_MAX - DIFFERS_PREFIX.length - SUFFIX_ROOM)}`;
}

export async function receiveSpool(job: SpoolReceive): Promise<{ path: string; rawBytes: number }> {
  // The file's errors reach the decoder (pipeline destroys it with them), and so the receive.
  const sealing = job.sealKey ? { sealing: { key: job.sealKey, stream: streamIdentity(job.uuid, job.parentUuid) } } : {};
  const decoded = pipeline(createReadStream(job.framesFile), new FrameDecoder({ chunkSize: job.chunkSize, ...sealing }), () => undefined);
  const got = await checkedReceive({
    dir: job.destDir,
    // DEST_DIR is shared: the volume's snapshots may be taken into it while this runs (docs/design.md, "Restore").
    folder: 'shared',
    name: job.name,
    stagingName: stagingName(job.uuid),
    input: decoded,
    check: checkFor(job),
    receivedUuid: job.uuid,
    ...(job.parentLocalUuid !== undefined ? { receivedOn: job.parentLocalUuid } : {}),
    taken: (path) => new RestoreReceiveError('restore_target_exists', `${path} already exists; move it away or restore into another folder`, { details: { path } }),
    ...(job.signal ? { signal: job.signal } : {}),
  });
  return { path: got.path, rawBytes: got.rawBytes };
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
      // No path through a symlink, the parent's included: --chroot is DEST_DIR, and the user's files are there.
      ...(job.parentPath === undefined ? {} : { parentEntries: parentEntries(job.parentPath) }),
    },
  });
  check.once('header', (header: SendStreamHeader) => {
    if (header.uuid === job.uuid) return;
    check.destroy(new RestoreReceiveError('stream_metadata_mismatch', `the stream is snapshot ${header.uuid}, not ${job.name} (${job.uuid})`, { details: { found: header.uuid, expected: job.uuid } }));
  });
  return check;
}
