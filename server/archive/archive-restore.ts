/**
 * A restore from the archive (docs/archive.md, "Restore"): the stored stream of a snapshot, exactly as it was pushed,
 * with the restore protocol's headers (server/restore.ts RestoreStream). Nothing is made again, so only what was
 * stored can be asked for: the parent it was pushed on, in the chunk size it was framed in.
 */
import { SnapferryError } from '../../core/errors.ts';
import { NotFound } from '../transfers/errors.ts';
import { RestoreError, type RestoreRequest, type RestoreStream } from '../restore.ts';
import type { ObjectStore } from './object-store.ts';
import { readManifest } from './manifest.ts';
import { openStoredStream } from './stored-stream.ts';
import { isLive, readVolume, snapshotView } from './volume-catalog.ts';

export async function openArchiveRestore(objects: ObjectStore, req: RestoreRequest): Promise<RestoreStream> {
  const catalog = await readVolume(objects, req.client, req.volume);
  const streams = catalog.streams;
  const entry = streams.find((s) => s.name === req.snapshot);
  // Taken out by retention (archive-retention.ts): refused from the swap that marked it, before any of its objects
  // goes, and for the week the catalog remembers it after. A restore that opened it before reads segments that may
  // then vanish: its body breaks off with an error (never a clean end: the end frame is in the last segment), and
  // the client's resume lands here.
  if (entry ? !isLive(entry) : catalog.retired?.some((r) => r.name === req.snapshot)) {
    throw new RestoreError('snapshot_retired', `${req.volume}/${req.snapshot} was deleted from the archive by the server's retention policy; restore a snapshot the archive still lists`, {
      details: { volume: req.volume, snapshot: req.snapshot },
    });
  }
  if (!entry) throw new NotFound(`snapshot ${req.volume}/${req.snapshot}`);
  if (entry.parentUuid !== req.parentUuid) {
    const needs = entry.parentUuid === null ? 'in full' : `on ${streams.find((s) => s.uuid === entry.parentUuid)?.name ?? entry.parentUuid}`;
    throw new RestoreError('restore_parent_unavailable', `the archive holds ${req.snapshot} only as it was pushed, ${needs}; restore the snapshots of its chain in order first`, {
      details: { volume: req.volume, parentUuid: entry.parentUuid, asked: req.parentUuid },
    });
  }
  if (entry.chunkSize !== req.chunkSize) {
    throw new RestoreError('chunk_size_mismatch', `${req.snapshot} is stored in chunks of ${entry.chunkSize} bytes; restore with chunkSize ${entry.chunkSize}`, {
      details: { chunkSize: entry.chunkSize, asked: req.chunkSize },
    });
  }
  const manifest = await readManifest(objects, entry.manifest);
  if (!manifest) throw new SnapferryError('archive_object_corrupt', `the archive's catalog names ${entry.manifest}, which is not in the bucket`, { details: { key: entry.manifest } });
  const body = await openStoredStream(objects, manifest, { fromFrame: req.fromFrame, chain: req.fromFrame > 0 ? req.chain : null, skip: req.skip });
  // A client that goes away stops the reads.
  req.signal?.addEventListener('abort', () => body.destroy(), { once: true });
  const now = new Date();
  const parent = streams.find((s) => s.uuid === entry.parentUuid);
  return {
    snapshot: snapshotView(entry, true, now), parent: parent ? snapshotView(parent, true, now) : null,
    chunkSize: entry.chunkSize, fromFrame: req.fromFrame, skip: req.skip, body,
  };
}
