/**
 * How each stored stream of the archive is sealed (core/sealing.ts: the key id its frames are sealed under, or plain).
 * Read from the stream's own first frame when it is stored (its header says sealed or not, its seal header names the
 * key, neither needs the key), recorded in its catalog entry (CatalogEntry.sealedBy) and listed with the snapshot
 * (Snapshot.sealedBy), so that a client's planner takes as a parent only a snapshot sealed as its push is. An
 * incremental's frame 0 is held to its parent's sealing again here (assertSealedAsParent), for a client that plans
 * without it (an older one).
 */
import { SnapferryError } from '../../core/errors.ts';
import { describeSealing, type Sealing } from '../../core/sealing.ts';
import { SEALING_PREFIX_BYTES, streamSealing } from '../../core/wire/index.ts';
import type { ObjectStore } from './object-store.ts';
import { readManifest, type ManifestSegment } from './manifest.ts';
import type { CatalogEntry } from './volume-catalog.ts';

/** A stored stream's sealing, from the start of its first segment (one small ranged GET). */
export async function readStoredSealing(objects: ObjectStore, first: Pick<ManifestSegment, 'key' | 'wireStart' | 'wireEnd'>): Promise<Sealing> {
  const start = await objects.getRange(first.key, 0, Math.min(first.wireEnd - first.wireStart, SEALING_PREFIX_BYTES));
  try {
    return streamSealing(start);
  } catch (err) {
    // Its frames verified when they were stored: a header that no longer parses changed in the bucket.
    throw new SnapferryError('archive_object_corrupt', `the archive's segment ${first.key} does not start with the frame it was stored with`, {
      cause: err, details: { key: first.key },
    });
  }
}

/**
 * The sealings of catalog entries. A recorded one is the answer. An entry stored before sealings were recorded has
 * none, and no guess is safe: sealing came before this record, so it may be plain or sealed, and either guess lets a
 * chain mix them, which is the fault this is here to prevent. So its stream is read once (manifest, then the first
 * frame of its first segment) and the answer kept: a stored stream never changes, and its manifest names one.
 */
export class StoredSealings {
  private readonly read = new Map<string, Promise<Sealing>>();

  constructor(private readonly objects: ObjectStore) {}

  of(entry: CatalogEntry): Promise<Sealing> {
    if (entry.sealedBy !== undefined) return Promise.resolve(entry.sealedBy);
    let sealing = this.read.get(entry.manifest);
    if (sealing === undefined) {
      sealing = this.readOld(entry);
      this.read.set(entry.manifest, sealing);
      // A failure (the store down a moment) is asked again next time, not kept.
      sealing.catch(() => this.read.delete(entry.manifest));
    }
    return sealing;
  }

  private async readOld(entry: CatalogEntry): Promise<Sealing> {
    const manifest = await readManifest(this.objects, entry.manifest);
    if (manifest === null) {
      throw new SnapferryError('archive_object_corrupt', `the archive's manifest ${entry.manifest} of ${entry.name} is missing`, { details: { key: entry.manifest } });
    }
    return readStoredSealing(this.objects, manifest.segments[0]!);
  }
}

/**
 * Refuses an incremental sealed otherwise than its parent's stream (`sealing_mismatch`): no restore with one config
 * could read the chain it would make. Checked at its frame 0, the first time the server can know how it is sealed.
 */
export function assertSealedAsParent(
  stream: { volume: string; snapshot: string; sealing: Sealing },
  parent: { name: string; sealing: Sealing },
): void {
  if (stream.sealing === parent.sealing) return;
  throw new SnapferryError(
    'sealing_mismatch',
    `${stream.snapshot} is ${describeSealing(stream.sealing)}, but its parent ${parent.name} in the archive is ${describeSealing(parent.sealing)}: ` +
      'a chain is sealed one way throughout, so that it restores with one config; push it in full (a client of this snapferry version plans so by itself)',
    { details: { volume: stream.volume, snapshot: stream.snapshot, sealedBy: stream.sealing, parent: parent.name, parentSealedBy: parent.sealing } },
  );
}
