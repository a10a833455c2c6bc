/**
 * Turns an upload into a received snapshot (docs/design.md, "The receive"), in one pass that runs beside the upload (issue 9): the
 * raw stream of its verified frames, as they arrive (server/live-source.ts: straight from the store when the receive
 * keeps up, read back from the spool and verified again when it is behind), is checked as a send stream against
 * the server's policy (paths that stay inside the snapshot, the parent the server chose, clone sources among this
 * volume's snapshots, device nodes and setuid files as configured; core/wire/sendstream-policy.ts). A chunk goes on
 * only once every command that ends in it has passed, and `btrfs receive` applies a command only once it has read
 * all of it, so a refused command is never applied: the failed pipeline stops the receive first. The first command
 * is renamed to a staging name (server/stream-rename.ts) and its UUIDs mapped into the client's namespace
 * (server/uuid-namespace.ts), into `btrfs receive -e --chroot` confined to the volume's folder; what it adds there
 * beside its subvolume goes when it ends (server/volume-folder.ts).
 *
 * btrfs receive exits at the stream's END command, which comes before the end frame: the snapshot counts as received
 * only once the end frame has verified too, and the new subvolume has the expected Received UUID and is read-only.
 * Only then is it renamed to the snapshot's name. Whatever fails, the partial subvolume is deleted, and with it
 * anything the stream wrote outside it through its own symlinks (at the next start, for a receive the server's death
 * cut short); the spool stays, and the error says why.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PassThrough, Writable } from 'node:stream';
import { SendStreamCheck, SendStreamUuidRewriter, type SendStreamHeader, type SendUuidMap } from '../core/wire/index.ts';
import type { LiveStreamSource } from './live-source.ts';
import * as btrfs from '../core/btrfs/index.ts';
import { SnapferryError } from '../core/errors.ts';
import type { SafeName } from '../core/names.ts';
import type { ServerLayout } from './layout.ts';
import { assertStreamStart } from './stream-start.ts';
import { FirstCommandRenamer } from './stream-rename.ts';
import { forgetFolder, recordFolder, removeAdded, type FolderSnapshot } from './volume-folder.ts';
import type { SendStreamPolicy } from '../core/wire/sendstream-policy.ts';

export interface ReceiveJob {
  id: string;
  client: SafeName;
  volume: SafeName;
  snapshot: SafeName;
  uuid: string;
  parentUuid: string | null;
  chunkSize: number;
  /** What the stream may do (parent, clone sources, devices, setuid), decided by the server. */
  policy: SendStreamPolicy;
  /**
   * The client's UUIDs to the Received UUIDs on disk (server/uuid-namespace.ts): the stream is checked as the client
   * wrote it, and reaches btrfs receive with its UUIDs mapped, so that it can name only this client's subvolumes.
   */
  toDisk: SendUuidMap;
  /** Throws when the checked snapshot must not take its name after all (called just before the rename). */
  confirm?: () => void;
}

export interface ReceivedSnapshot {
  path: string;
  serverUuid: string;
  /** The Received UUID it has on disk: toDisk(uuid). */
  receivedUuid: string;
  rawBytes: number;
  wireBytes: number;
}

export class ReceiveError extends SnapferryError {}

export interface ReceiveRun {
  /** The snapshot, once the whole stream arrived, verified and was received and checked. */
  done: Promise<ReceivedSnapshot>;
  /** Raw send-stream bytes checked and handed on to `btrfs receive` so far (counted as sent, before the rename). */
  readonly rawFed: number;
  /** Kills the receive; `done` rejects (with `reason`) once the partial subvolume is deleted. */
  stop(reason: Error): void;
}

/** Receives the stream `source` gives (framed bytes from the spool's start) as the job's snapshot. */
export function receiveStream(layout: ServerLayout, job: ReceiveJob, source: LiveStreamSource): ReceiveRun {
  const stopper = new AbortController();
  // The check sees every byte before it goes on: its count is the position, with no stream of its own to keep it.
  const check = checkFor(job);
  const done = runReceive(layout, job, source, check, stopper.signal);
  done.catch(() => undefined);
  return {
    done,
    get rawFed() {
      return check.parser.bytes;
    },
    stop(reason: Error) {
      stopper.abort(reason);
    },
  };
}

async function runReceive(layout: ServerLayout, job: ReceiveJob, source: LiveStreamSource, check: SendStreamCheck, signal: AbortSignal): Promise<ReceivedSnapshot> {
  const volumeDir = layout.volumeDir(job.client, job.volume);
  const finalPath = layout.snapshotPath(job.client, job.volume, job.snapshot);
  const stagedPath = path.join(volumeDir, layout.incomingName(job.id));
  const recordFile = layout.folderRecordFile(job.id);
  let before: FolderSnapshot | undefined;
  try {
    await fs.mkdir(volumeDir, { recursive: true, mode: 0o700 });
    await removePartial(stagedPath);
    if (await exists(finalPath)) {
      throw new ReceiveError(
        'snapshot_exists',
        `${job.volume}/${job.snapshot} already exists on the server; delete it (btrfs subvolume delete) to receive it again`,
      );
    }
    // On disk before btrfs runs, so that a server killed meanwhile still knows, at its next start, what is not its.
    before = await recordFolder(recordFile, volumeDir, job.client, job.volume);
    signal.throwIfAborted();
  } catch (err) {
    source.destroy();
    if (before) await forgetFolder(recordFile);
    if (signal.aborted) throw signal.reason;
    // With its cause: a full disk (the record cannot be written) is a wait for space, not a refusal.
    throw err instanceof SnapferryError ? err : new ReceiveError('receive_failed', `receiving ${job.snapshot} could not start: ${(err as Error).message}`, { cause: err });
  }
  const raw = new PassThrough();
  const received = btrfs.receive(volumeDir, raw, { chroot: true, endOnEndCommand: true, signal });
  // btrfs receive stops reading at END, before the end frame: the feed keeps the pipeline going to its end (where the
  // end frame is verified) whether or not btrfs still reads.
  // The one place that feeds btrfs receive (live, from the spool after a restart, on a retry): UUIDs mapped here.
  const toDisk = new SendStreamUuidRewriter(job.toDisk);
  const fed = pipeline(source, check, new FirstCommandRenamer(layout.incomingName(job.id)), toDisk, feed(raw), { signal });
  try {
    const [piped, got] = await Promise.allSettled([
      fed.catch((err: unknown) => {
        // A failed stream stops the receive at once, before btrfs could see a clean end of its input.
        raw.destroy(err as Error);
        throw err;
      }),
      received,
    ]);
    if (signal.aborted) throw signal.reason;
    // The stream's own failure (a refused command, a damaged frame, a missing end) says more than btrfs's.
    if (piped.status === 'rejected') throw piped.reason;
    if (got.status === 'rejected') throw got.reason;
    const shown = await btrfs.subvolumeShow(stagedPath);
    const expected = job.toDisk(job.uuid);
    if (shown.receivedUuid !== expected) {
      throw new ReceiveError(
        'receive_unchecked',
        `btrfs receive finished but ${job.snapshot} has Received UUID ${shown.receivedUuid ?? 'none'}, not ${expected} (${job.uuid} in ${job.client}'s namespace)`,
      );
    }
    if (!shown.readonly) {
      throw new ReceiveError('receive_unchecked', `btrfs receive finished but ${job.snapshot} is not read-only`);
    }
    job.confirm?.();
    await fs.rename(stagedPath, finalPath);
    // Anything the stream wrote through its own symlinks outside the snapshot (server/volume-folder.ts).
    await removeAdded(volumeDir, before, [job.snapshot]);
    await forgetFolder(recordFile);
    return { path: finalPath, serverUuid: shown.uuid, receivedUuid: expected, rawBytes: check.summary?.bytes ?? 0, wireBytes: source.wireRead };
  } catch (err) {
    raw.destroy();
    source.destroy();
    await received.catch(() => undefined);
    await removePartial(stagedPath);
    await removeAdded(volumeDir, before);
    await forgetFolder(recordFile);
    throw err instanceof SnapferryError || signal.aborted
      ? err
      : new ReceiveError('receive_failed', `receiving ${job.snapshot} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** Writes into `raw` (btrfs receive's input) while it is open; once btrfs has stopped reading, takes bytes and drops them. */
function feed(raw: PassThrough): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (raw.destroyed || raw.writableEnded) return callback();
      if (raw.write(chunk)) return callback();
      const go = () => {
        raw.off('drain', go);
        raw.off('close', go);
        callback();
      };
      raw.on('drain', go);
      raw.on('close', go);
    },
    final(callback) {
      if (!raw.destroyed && !raw.writableEnded) raw.end();
      callback();
    },
  });
}

/** The stream's checks: framing, the server's policy, and its first command against the upload's metadata. */
function checkFor(job: ReceiveJob): SendStreamCheck {
  const check = new SendStreamCheck({ policy: job.policy });
  check.once('header', (header: SendStreamHeader) => {
    try {
      assertStreamStart(header, job);
    } catch (err) {
      check.destroy(err as Error);
    }
  });
  return check;
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

/** Deletes what an interrupted or failed `btrfs receive` left under the staging name. */
export async function removePartial(stagedPath: string): Promise<void> {
  if (await btrfs.isSubvolume(stagedPath)) await btrfs.deleteSubvolume(stagedPath);
  else await fs.rm(stagedPath, { recursive: true, force: true });
}
