/**
 * One checked `btrfs receive`: the server's receive of an upload and the client's restore of a spool both go through
 * here (docs/design.md, "The receive"). Each side brings the raw stream and its own checks on it (a SendStreamCheck
 * with its policy and its test of the first command); the rest is the same for both:
 *
 * - the stream's first command is renamed to a staging name (core/wire/stream-rename.ts): btrfs allows renaming a
 *   read-only subvolume within its folder but not moving it to another (EROFS), so it is received in the folder it
 *   belongs in, under a dot name no snapshot has, and a half-received snapshot never carries a snapshot's name;
 * - its UUIDs may be mapped on the way (the server's per-client namespaces);
 * - `btrfs receive -e --chroot` into that folder: `-e` ends at the END command, `--chroot` keeps the stream's
 *   absolute paths and symlinks inside the folder;
 * - btrfs exits at END, which comes before the end frame: the stream is fed on to its end (core/receive/feed.ts), and
 *   the snapshot counts only once the stream has passed every check, the end frame included;
 * - checked after, not trusted on btrfs's exit code: the new subvolume must have the expected Received UUID and be
 *   read-only (`receive_unchecked`); only then does it take its name;
 * - whatever fails, the partial subvolume is deleted; the error says why (`receive_failed` for what had no code, a
 *   stream btrfs cannot apply is `sendstream_cannot_apply`: core/btrfs/receive-failure.ts);
 * - the caller's policy refuses a path through a symlink (core/wire/sendstream-symlinks.ts): the chroot is the
 *   folder, so `up -> /` then `up/x` would be the folder's x. In a folder that is the caller's alone (the server's
 *   volume folders), what the stream still wrote beside its subvolume is deleted, received or failed, and what the
 *   folder held before stays (core/receive/added-entries.ts). In a shared folder (a restore's DEST_DIR, where
 *   `snapferry snapshot`, the client's timer or a person may write while the receive runs) nothing tells the
 *   stream's entries from theirs, so nothing is swept: only the staging subvolume, which is the receive's own, is
 *   ever deleted there, and the policy is the one defence against a stream writing beside it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as btrfs from '../btrfs/index.ts';
import { SnapferryError } from '../errors.ts';
import { FirstCommandRenamer, SendStreamUuidRewriter, type SendStreamCheck, type SendUuidMap } from '../wire/index.ts';
import { chunkDone } from '../wire/chunk-memory.ts';
import { folderContents, removeAdded, type FolderContents } from './added-entries.ts';
import { feed } from './feed.ts';

export interface CheckedReceiveJob {
  /** The folder the snapshot is received into; btrfs receive is chrooted to it. */
  dir: string;
  /**
   * Who writes in `dir`: `exclusive` (only this side's receives, the others named by othersNames): what appeared in
   * it during the receive is the stream's and is deleted after; `shared` (others may write meanwhile): only the
   * staging subvolume is ever deleted, never another entry, whenever it appeared.
   */
  folder: 'exclusive' | 'shared';
  /** The snapshot's name in `dir`, once it is checked. */
  name: string;
  /** The dot name (one path component) it is received under until then. */
  stagingName: string;
  /** The raw send stream, read once; destroyed when the receive fails. */
  input: Readable;
  /** The caller's checks, which every byte passes before btrfs sees it: framing, its policy, its first command. */
  check: SendStreamCheck;
  /** The stream's UUIDs as btrfs receive gets them (the server's per-client namespace); as they are by default. */
  mapUuids?: SendUuidMap;
  /** The Received UUID the new subvolume must have. */
  receivedUuid: string;
  /**
   * An incremental's: the UUID (its own, on this filesystem) of the subvolume it must have been received on. btrfs
   * receive finds the parent by identity anywhere on the filesystem, and the new subvolume's Parent UUID says which
   * one it took.
   */
  receivedOn?: string;
  /** Said after the expected UUID when it is not the stream's own, e.g. "(U in alice's namespace)". */
  uuidNote?: string;
  /** The error when `name` is already taken in `dir` (each side says what to do about it). */
  taken: (path: string) => SnapferryError;
  /** Throws when the checked snapshot must not take its name after all (called just before the rename). */
  confirm?: () => void;
  /** Kills the receive: it rejects with btrfs_cancelled (or the signal's reason if btrfs had finished). */
  signal?: AbortSignal;
  /**
   * What `dir` held before this receive (folderContents), when the caller recorded it itself (the server does, on
   * disk, to clean up after a crash); else it is read just before btrfs starts.
   */
  before?: FolderContents;
  /**
   * Names in `dir` that others wrote while this receive ran (the server: snapshots another transfer received into
   * the volume meanwhile), asked for when the cleanup runs: it never deletes them, though they are new since `before`.
   */
  othersNames?: () => readonly string[];
}

export interface CheckedSnapshot {
  path: string;
  /** The subvolume's own UUID on this filesystem. */
  uuid: string;
  receivedUuid: string;
  /** Raw send-stream bytes received. */
  rawBytes: number;
}

export class ReceiveError extends SnapferryError {}

/** Receives `job.input` as `job.name` in `job.dir`, checked before and after, or deletes what it left and throws. */
export async function checkedReceive(job: CheckedReceiveJob): Promise<CheckedSnapshot> {
  const { dir, name, signal } = job;
  const finalPath = path.join(dir, name);
  const staged = path.join(dir, job.stagingName);
  let renamer: FirstCommandRenamer;
  let before: FolderContents | null;
  try {
    renamer = new FirstCommandRenamer(job.stagingName);
    // What a killed run left under the staging name is this receive's to delete.
    await removePartial(staged);
    if (await exists(finalPath)) throw job.taken(finalPath);
    before = job.folder === 'shared' ? null : (job.before ?? (await folderContents(dir)));
    signal?.throwIfAborted();
  } catch (err) {
    job.input.destroy();
    throw signal?.aborted || err instanceof SnapferryError ? err : new ReceiveError('receive_failed', `receiving ${name} could not start: ${(err as Error).message}`, { cause: err });
  }
  const raw = new PassThrough();
  // Decoded chunks' memory is used again once the pipe has it whole (core/wire/chunk-memory.ts).
  const received = btrfs.receive(dir, raw, { chroot: true, endOnEndCommand: true, taken: chunkDone, ...(signal ? { signal } : {}) });
  const stages = [job.input, job.check, renamer, ...(job.mapUuids ? [new SendStreamUuidRewriter(job.mapUuids)] : []), feed(raw)];
  const fed = pipeline(stages, signal ? { signal } : {});
  try {
    const [piped, got] = await Promise.allSettled([
      fed.catch((err: unknown) => {
        // A failed stream stops the receive at once, before btrfs could see a clean end of its input.
        raw.destroy(err as Error);
        throw err;
      }),
      received,
    ]);
    // The stream's own failure (a refused command, a damaged frame, a missing end) says more than btrfs's.
    if (piped.status === 'rejected') throw piped.reason;
    if (got.status === 'rejected') throw got.reason;
    const shown = await btrfs.subvolumeShow(staged);
    if (shown.receivedUuid !== job.receivedUuid) {
      const note = job.uuidNote === undefined ? '' : ` ${job.uuidNote}`;
      throw new ReceiveError('receive_unchecked', `btrfs receive finished but ${name} has Received UUID ${shown.receivedUuid ?? 'none'}, not ${job.receivedUuid}${note}`);
    }
    if (!shown.readonly) throw new ReceiveError('receive_unchecked', `btrfs receive finished but ${name} is not read-only`);
    if (job.receivedOn !== undefined && shown.parentUuid !== job.receivedOn) {
      throw new ReceiveError('receive_wrong_parent', `btrfs receive built ${name} on subvolume ${shown.parentUuid ?? 'none'}, not on the parent named (${job.receivedOn}): another subvolume on this filesystem has the parent's identity`, {
        details: { receivedOn: shown.parentUuid, expected: job.receivedOn },
      });
    }
    job.confirm?.();
    // Before the rename: an entry the stream made under the snapshot's name would otherwise take its place or stop it.
    if (before) await removeAdded(dir, before, [...othersNames(job), job.stagingName]);
    // rename() would replace an empty folder someone made under the name meanwhile: it is theirs, not this receive's.
    else if (await exists(finalPath)) throw job.taken(finalPath);
    await fs.rename(staged, finalPath);
    return { path: finalPath, uuid: shown.uuid, receivedUuid: job.receivedUuid, rawBytes: job.check.summary?.bytes ?? 0 };
  } catch (err) {
    raw.destroy();
    job.input.destroy();
    const killed = await received.then(() => undefined, (e: unknown) => e);
    await removePartial(staged);
    if (before) await removeAdded(dir, before, othersNames(job));
    // Cancelled, it says so as btrfs receive does (btrfs_cancelled), not as the stream it cut off.
    if (signal?.aborted) throw killed ?? signal.reason;
    throw err instanceof SnapferryError ? err : new ReceiveError('receive_failed', `receiving ${name} failed: ${(err as Error).message}`, { cause: err });
  }
}

function othersNames(job: CheckedReceiveJob): readonly string[] {
  return job.othersNames?.() ?? [];
}

/** Deletes what an interrupted or failed `btrfs receive` left under a staging name. */
export async function removePartial(stagedPath: string): Promise<void> {
  if (await btrfs.isSubvolume(stagedPath)) await btrfs.deleteSubvolume(stagedPath);
  else await fs.rm(stagedPath, { recursive: true, force: true });
}

/** Anything under the name counts, a dangling symlink too: the rename would replace it. */
async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}
