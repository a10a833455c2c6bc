/**
 * Turns an upload into a received snapshot (docs/design.md, "The receive"), in one pass that runs beside the upload
 * (issue 9): the raw stream of its verified frames, as they arrive (server/live-source.ts: straight from the store
 * when the receive keeps up, read back from the spool and verified again when it is behind), is checked as a send
 * stream against the server's policy (paths that stay inside the snapshot, the parent the server chose, clone sources
 * among this volume's snapshots, device nodes and setuid files as configured; core/wire/sendstream-policy.ts) and
 * its first command against the upload's metadata. A chunk goes on only once every command that ends in it has
 * passed, and `btrfs receive` applies a command only once it has read all of it, so a refused command is never
 * applied: the failed pipeline stops the receive first.
 *
 * The receive itself is the one both sides use (core/receive/checked-receive.ts: staging name, `btrfs receive -e
 * --chroot` into the volume's folder, Received UUID and read-only checked, the rename, the partial deleted on
 * failure), with the stream's UUIDs mapped into the client's namespace (server/uuid-namespace.ts). What is the
 * server's own is here: the volume folder, recorded before btrfs runs so that what the stream adds there through its
 * own symlinks goes when it ends, received or failed (server/volume-folder.ts; at the next start, for a receive the
 * server's death cut short). The spool stays, and the error says why.
 */
import fs from 'node:fs/promises';
import * as btrfs from '../core/btrfs/index.ts';
import { SendStreamCheck, type SendStreamHeader, type SendUuidMap } from '../core/wire/index.ts';
import type { LiveStreamSource } from './live-source.ts';
import { checkedReceive, ReceiveError } from '../core/receive/checked-receive.ts';
import { SnapferryError } from '../core/errors.ts';
import type { SafeName } from '../core/names.ts';
import type { ServerLayout } from './layout.ts';
import { assertStreamStart } from './stream-start.ts';
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
  /**
   * What others hold in the volume's folder, as the catalog has it when the receive's cleanup runs
   * (server/volume-folder.ts othersInFolder): never deleted, though it appeared while this receive ran.
   */
  othersNames: () => readonly string[];
}

export interface ReceivedSnapshot {
  path: string;
  serverUuid: string;
  /** The Received UUID it has on disk: toDisk(uuid). */
  receivedUuid: string;
  rawBytes: number;
  wireBytes: number;
  /** Its ctransid as received (core/btrfs/ctransid.ts), the mark of a change made since; null when unread. */
  ctransid: number | null;
}

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
  const recordFile = layout.folderRecordFile(job.id);
  let before: FolderSnapshot;
  try {
    await fs.mkdir(volumeDir, { recursive: true, mode: 0o700 });
    // On disk before btrfs runs, so that a server killed meanwhile still knows, at its next start, what is not its.
    before = await recordFolder(recordFile, volumeDir, job.client, job.volume);
  } catch (err) {
    source.destroy();
    if (signal.aborted) throw signal.reason;
    if (err instanceof SnapferryError) throw err;
    // With its cause: a full disk (the record cannot be written) is a wait for space, not a refusal.
    throw new ReceiveError('receive_failed', `receiving ${job.snapshot} could not start: ${(err as Error).message}`, { cause: err });
  }
  try {
    // The one place that feeds btrfs receive (live, from the spool after a restart, on a retry): UUIDs mapped here.
    const got = await checkedReceive({
      dir: volumeDir,
      // Only this server writes in a volume's folder, one receive at a time (volume_busy).
      folder: 'exclusive',
      name: job.snapshot,
      stagingName: layout.incomingName(job.id),
      input: source,
      check,
      mapUuids: job.toDisk,
      receivedUuid: job.toDisk(job.uuid),
      uuidNote: `(${job.uuid} in ${job.client}'s namespace)`,
      taken: () => new ReceiveError('snapshot_exists', `${job.volume}/${job.snapshot} already exists on the server; delete it (btrfs subvolume delete) to receive it again`),
      ...(job.confirm ? { confirm: job.confirm } : {}),
      othersNames: job.othersNames,
      signal,
    });
    // Anything the stream wrote through its own symlinks outside the snapshot (server/volume-folder.ts).
    await removeAdded(volumeDir, before, [...job.othersNames(), job.snapshot]);
    // Unread (it never failed in testing), the snapshot is no less received: its record learns it at the next look.
    const ctransid = await btrfs.ctransidOf(got.path, { signal }).catch(() => null);
    return { path: got.path, serverUuid: got.uuid, receivedUuid: got.receivedUuid, rawBytes: got.rawBytes, wireBytes: source.wireRead, ctransid };
  } catch (err) {
    // Never what others hold: a snapshot received into the volume while this ran (were two receives ever to run
    // in one volume at once) is not this receive's to delete.
    await removeAdded(volumeDir, before, job.othersNames());
    // Stopped, the run rejects with the reason it was stopped for.
    throw signal.aborted ? signal.reason : err;
  } finally {
    await forgetFolder(recordFile);
  }
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
