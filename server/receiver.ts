/**
 * Turns a complete, verified spool into a received snapshot (DESIGN.md step 6), one transfer at a time.
 *
 * The spool is decoded again (so bytes damaged on disk since they arrived are caught before `btrfs receive` sees
 * them) and checked as a btrfs send stream; its first command is renamed to a staging name (server/stream-rename.ts)
 * and `btrfs receive` writes into the volume's folder. Only when the new subvolume has the expected Received UUID
 * and is read-only is it renamed to the snapshot's name. Whatever fails, the partial subvolume is deleted, the
 * spool stays, and the error says why.
 */
import fs from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PassThrough } from 'node:stream';
import { FrameDecoder, SendStreamCheck, type SendStreamHeader } from '../core/wire/index.ts';
import * as btrfs from '../core/btrfs/index.ts';
import { SnapferryError } from '../core/errors.ts';
import type { SafeName } from '../core/names.ts';
import type { ServerLayout } from './layout.ts';
import { assertStreamStart } from './stream-start.ts';
import { FirstCommandRenamer } from './stream-rename.ts';

export interface ReceiveJob {
  id: string;
  client: SafeName;
  volume: SafeName;
  snapshot: SafeName;
  uuid: string;
  parentUuid: string | null;
  chunkSize: number;
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
  const check = new SendStreamCheck();
  check.once('header', (header: SendStreamHeader) => {
    try {
      assertStreamStart(header, job);
    } catch (err) {
      check.destroy(err as Error);
    }
  });
  const raw = new PassThrough();
  const received = btrfs.receive(volumeDir, raw);
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
