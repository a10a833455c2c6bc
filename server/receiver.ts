/**
 * Turns a complete, verified spool into a received snapshot (DESIGN.md step 6), one transfer at a time.
 *
 * btrfs receive trusts its input, so the whole spool is first decoded and checked, with nothing written: framing
 * (magic, version, CRC and length of every command, one subvolume, END) and the server's policy (paths that stay
 * inside the snapshot, the parent the server chose, clone sources among this volume's snapshots, device nodes and
 * setuid files as configured; core/wire/sendstream-policy.ts). Only a stream that passed whole is decoded a second
 * time (checked again on the way: bytes damaged on disk since are caught before `btrfs receive` sees them), its first
 * command renamed to a staging name (server/stream-rename.ts), into `btrfs receive -e --chroot` confined to the
 * volume's folder. Only when the new subvolume has the expected Received UUID and is read-only is it renamed to the
 * snapshot's name. Whatever fails, the partial subvolume is deleted, the spool stays, and the error says why.
 */
import fs from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PassThrough, Writable } from 'node:stream';
import { FrameDecoder, SendStreamCheck, type SendStreamHeader } from '../core/wire/index.ts';
import * as btrfs from '../core/btrfs/index.ts';
import { SnapferryError } from '../core/errors.ts';
import type { SafeName } from '../core/names.ts';
import type { ServerLayout } from './layout.ts';
import { assertStreamStart } from './stream-start.ts';
import { FirstCommandRenamer } from './stream-rename.ts';
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
}

export interface ReceivedSnapshot {
  path: string;
  serverUuid: string;
  rawBytes: number;
  wireBytes: number;
}

export class ReceiveError extends SnapferryError {}

export async function receiveFromSpool(layout: ServerLayout, job: ReceiveJob): Promise<ReceivedSnapshot> {
  const volumeDir = layout.volumeDir(job.client, job.volume);
  const finalPath = layout.snapshotPath(job.client, job.volume, job.snapshot);
  const stagedPath = path.join(volumeDir, layout.incomingName(job.id));
  await fs.mkdir(volumeDir, { recursive: true, mode: 0o700 });
  await removePartial(stagedPath);
  if (await exists(finalPath)) {
    throw new ReceiveError(
      'snapshot_exists',
      `${job.volume}/${job.snapshot} already exists on the server; delete it (btrfs subvolume delete) to receive it again`,
    );
  }
  const spool = layout.spoolFile(job.id);
  const wireBytes = (await fs.stat(spool)).size;
  await pipeline(createReadStream(spool), new FrameDecoder({ chunkSize: job.chunkSize }), checkFor(job), discard());
  const check = checkFor(job);
  const raw = new PassThrough();
  // --chroot: paths in the stream resolve inside the volume's folder whatever they say; -e: the END command, not
  // the input running out, says the stream is complete.
  const received = btrfs.receive(volumeDir, raw, { chroot: true, endOnEndCommand: true });
  try {
    await Promise.all([
      pipeline(
        createReadStream(spool),
        new FrameDecoder({ chunkSize: job.chunkSize }),
        check,
        new FirstCommandRenamer(layout.incomingName(job.id)),
        raw,
      ),
      received,
    ]);
    const shown = await btrfs.subvolumeShow(stagedPath);
    if (shown.receivedUuid !== job.uuid) {
      throw new ReceiveError(
        'receive_unchecked',
        `btrfs receive finished but ${job.snapshot} has Received UUID ${shown.receivedUuid ?? 'none'}, not ${job.uuid}`,
      );
    }
    if (!shown.readonly) {
      throw new ReceiveError('receive_unchecked', `btrfs receive finished but ${job.snapshot} is not read-only`);
    }
    await fs.rename(stagedPath, finalPath);
    return { path: finalPath, serverUuid: shown.uuid, rawBytes: check.summary?.bytes ?? 0, wireBytes };
  } catch (err) {
    raw.destroy();
    await received.catch(() => undefined);
    await removePartial(stagedPath);
    throw err instanceof SnapferryError
      ? err
      : new ReceiveError('receive_failed', `receiving ${job.snapshot} failed: ${(err as Error).message}`, { cause: err });
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

function discard(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
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
