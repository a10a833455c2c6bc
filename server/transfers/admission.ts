/**
 * Whether a new upload may begin, and its record: the tus creation request's way in. The looking (btrfs features, free
 * space, the client's spools, the volume and the parent as the disk has them now) happens here, in that order; the
 * verdict is the pure checks of server/transfers/creation.ts, run with the record's write in one turn.
 */
import fs from 'node:fs/promises';
import type { SafeName } from '../../core/names.ts';
import { btrfsFeatures } from '../../core/btrfs/features.ts';
import type { TransferRecord } from '../catalog.ts';
import { CreationRate } from '../creation-rate.ts';
import { asDiskFull } from '../disk-full.ts';
import { lookAtParent, refreshVolume, type DiskTruth } from '../disk-truth.ts';
import { spoolsOnDisk } from '../orphan-spools.ts';
import type { SpoolFiles } from '../spool/usage.ts';
import { tooManyCreations, type UploadLimits } from '../upload-limits.ts';
import type { ReceivingNow } from './volume-hold.ts';
import { admitTransfer, checkFreeSpace, checkOpenUploads, parseCreation, type CreationMetadata } from './creation.ts';

export class Admission {
  private readonly creations: CreationRate;

  constructor(
    private readonly disk: DiskTruth,
    private readonly limits: Readonly<UploadLimits>,
    /** Whose receive still works in its volume's folder (server/live-receives.ts isReceiving). */
    private readonly receiving: ReceivingNow,
  ) {
    this.creations = new CreationRate(limits);
  }

  /** Validates a new upload's metadata and records the transfer, or throws why it may not begin. */
  async begin(client: SafeName, id: string, metadata: CreationMetadata): Promise<TransferRecord> {
    const { catalog, layout, log } = this.disk;
    const wait = this.creations.take(client);
    if (wait > 0) throw tooManyCreations(client, this.limits, wait);
    const c = parseCreation(metadata, await btrfsFeatures());
    // Before anything looks them up: a snapshot the catalog holds without its client UUID (rebuilt from the disk) is
    // the one this upload names, or its parent (server/uuid-namespace.ts).
    await catalog.learnUuids(client, [c.uuid, c.parentUuid]);
    const stats = await fs.statfs(layout.spool);
    checkFreeSpace(stats.bavail * stats.bsize, c.chunkSize);
    const spools = await clientSpools(this.disk, client);
    checkOpenUploads(client, catalog.transfers({ client }), spools.map((s) => s.id), this.limits.maxOpenUploads);
    await refreshVolume(this.disk, client, c.volume);
    if (c.parentUuid) await lookAtParent(this.disk, client, c.volume, c.parentUuid);
    // Looked at on disk before; the checks and the record must come in one turn (see ServerPruner.prune).
    const now = new Date().toISOString();
    const record = admitTransfer(client, id, c, { snapshots: catalog.snapshots(client), transfers: catalog.transfers({ client }), receiving: this.receiving }, now);
    try {
      await catalog.putTransfer(record);
    } catch (err) {
      // A record whose write failed is taken back (Catalog.change): it holds neither the volume nor a slot.
      throw asDiskFull(err, { transferId: id });
    }
    log.info({ transfer: id, client, volume: c.volume, snapshot: c.snapshot, parentUuid: c.parentUuid }, 'transfer created');
    return record;
  }
}

/** The client's uploads in the spool folder, each as its files are on disk (server/spool/usage.ts). */
export async function clientSpools({ catalog, layout }: DiskTruth, client: string): Promise<SpoolFiles[]> {
  return (await spoolsOnDisk(layout))
    .filter((s) => catalog.transfer(s.id)?.client === client)
    .map((s) => ({ id: s.id, streamBytes: s.streamBytes, otherBytes: s.bytes - s.streamBytes }));
}
