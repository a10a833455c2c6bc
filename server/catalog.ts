/**
 * The catalog: which snapshots the server holds and which transfers it knows, per client and volume. One JSON file,
 * replaced atomically (write, fsync, rename, fsync the folder) on every change, so a crash leaves the old or the new
 * catalog and never half of one. Changes are rare (a transfer changing state), never per frame: per-frame progress
 * lives in each upload's frame index (server/spool/frame-index.ts).
 */
import fs from 'node:fs/promises';
import { writeFileDurably } from '../core/durable-file.ts';
import path from 'node:path';
import { z } from 'zod';
import { RemovedSnapshot, Snapshot, Transfer, alterations, finalStates, type Alteration } from '../core/protocol.ts';
import { SnapferryError } from '../core/errors.ts';
import { canMove, endsUnreceived } from './transfer-moves.ts';

/** The catalog's own records are the API's shapes plus the owner, so the two cannot drift apart. */
const owner = { client: z.string(), volume: z.string() };

const TransferRecord = Transfer.omit({ wireOffset: true, framesVerified: true, rawBytes: true, chain: true, rawReceived: true, wireArrived: true, wireHeld: true, heldByPush: true, spoolBytes: true }).extend({
  /** Final figures, kept once the spool (which holds the live ones) is gone. */
  wireBytes: z.number().nullable(),
  rawBytes: z.number().nullable(),
  framesVerified: z.number().nullable(),
});
export type TransferRecord = z.infer<typeof TransferRecord>;

const SnapshotRecord = Snapshot.extend(owner).extend({
  /**
   * The Received UUID the subvolume has on disk: the client's `uuid` in its namespace (server/uuid-namespace.ts).
   * Absent on snapshots received before namespacing, whose Received UUID on disk is `uuid` itself. The server's own
   * word, never shown to a client.
   */
  receivedUuid: z.string().optional(),
});
export type SnapshotRecord = z.infer<typeof SnapshotRecord>;

const RemovedRecord = RemovedSnapshot.extend(owner);
export type RemovedRecord = z.infer<typeof RemovedRecord>;

const CatalogFile = z.object({
  version: z.literal(1),
  transfers: z.array(TransferRecord),
  snapshots: z.array(SnapshotRecord),
  removed: z.array(RemovedRecord),
});
type CatalogFile = z.infer<typeof CatalogFile>;

/** How many removed-snapshot notes to keep per volume: enough to explain a fallback, not a growing log. */
const REMOVED_KEPT_PER_VOLUME = 20;

export class CatalogError extends SnapferryError {}

/** Told of a transfer that just ended without a snapshot (failed or aborted), as it now is. */
export type TransferEndListener = (t: TransferRecord) => Promise<void>;

export class Catalog {
  private data: CatalogFile;
  private saving: Promise<void> = Promise.resolve();
  private endListener: TransferEndListener | null = null;

  private constructor(
    private readonly file: string,
    data: CatalogFile,
  ) {
    this.data = data;
  }

  static async open(file: string): Promise<Catalog> {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return new Catalog(file, { version: 1, transfers: [], snapshots: [], removed: [] });
      }
      throw err;
    }
    const parsed = CatalogFile.safeParse(JSON.parse(text));
    if (!parsed.success) {
      throw new CatalogError(
        'catalog_corrupt',
        `the catalog ${file} is not valid (${parsed.error.issues[0]?.message ?? 'unknown'}); restore it from a ` +
          'backup or move it away to rebuild it from the subvolumes on disk',
      );
    }
    return new Catalog(file, parsed.data);
  }

  transfers(filter: { client?: string; volume?: string } = {}): TransferRecord[] {
    return this.data.transfers.filter(
      (t) => (filter.client === undefined || t.client === filter.client) && (filter.volume === undefined || t.volume === filter.volume),
    );
  }

  transfer(id: string): TransferRecord | undefined {
    return this.data.transfers.find((t) => t.id === id);
  }

  async putTransfer(record: TransferRecord): Promise<void> {
    const parsed = TransferRecord.parse(record);
    const i = this.data.transfers.findIndex((t) => t.id === record.id);
    if (i === -1) this.data.transfers.push(parsed);
    else this.data.transfers[i] = parsed;
    await this.save();
  }

  /**
   * Changes a transfer, in memory at once and then on disk: a caller that cannot save (a full disk) still finds the
   * change here, and the next save that succeeds writes it. A change of state must be one server/transfer-moves.ts
   * allows.
   */
  async updateTransfer(id: string, change: Partial<TransferRecord>): Promise<TransferRecord> {
    const current = this.transfer(id);
    if (!current) throw new CatalogError('transfer_not_found', `no transfer ${id}`);
    if (change.state !== undefined && !canMove(current.state, change.state)) {
      throw new CatalogError('transfer_state_conflict', `transfer ${id} cannot go from ${current.state} to ${change.state}`, {
        details: { transferId: id, from: current.state, to: change.state },
      });
    }
    const next = { ...current, ...change, updatedAt: new Date().toISOString() };
    // In memory before the first await (server/expiry.ts relies on it), on disk once saved. An ended transfer is thus
    // final here while its receive is still being stopped: what must wait for the stop asks the receives too
    // (server/transfers/volume-hold.ts).
    const saved = this.putTransfer(next);
    const ended = endsUnreceived(current.state, next.state) ? this.endListener?.(next) : undefined;
    try {
      await saved;
    } finally {
      // Even when the save failed: the change holds in memory, so the transfer has ended all the same.
      await ended;
    }
    return next;
  }

  /**
   * `listener` is awaited by every change that ends a transfer without a snapshot, whoever makes it (a quota
   * refusal, an expiry, a refused stream, a failed receive, an abort): the one place where such an end happens, so
   * the one place that stops what still works for the transfer. A failed transfer's receive that ran on was unseen by
   * volume_busy, and its cleanup, when it was stopped at last, deleted what the next receive in the volume had added.
   * One listener: the transfer lifecycle's (server/transfers/lifecycle.ts).
   */
  onTransferEnd(listener: TransferEndListener): void {
    this.endListener = listener;
  }

  /**
   * Forgets transfers that are over (server/transfer-history.ts chooses which; one in progress is never forgotten);
   * snapshot records stay as they are.
   */
  async forgetTransfers(ids: ReadonlySet<string>): Promise<void> {
    if (ids.size === 0) return;
    this.data.transfers = this.data.transfers.filter((t) => !(ids.has(t.id) && finalStates.includes(t.state)));
    await this.save();
  }

  snapshots(client: string, volume?: string): SnapshotRecord[] {
    return this.data.snapshots.filter((s) => s.client === client && (volume === undefined || s.volume === volume));
  }

  allSnapshots(): SnapshotRecord[] {
    return [...this.data.snapshots];
  }

  removed(client: string, volume: string): RemovedRecord[] {
    return this.data.removed.filter((r) => r.client === client && r.volume === volume);
  }

  async addSnapshot(record: SnapshotRecord): Promise<void> {
    const parsed = SnapshotRecord.parse(record);
    this.data.snapshots = this.data.snapshots.filter(
      (s) => !(s.client === record.client && s.volume === record.volume && s.name === record.name),
    );
    this.data.snapshots.push(parsed);
    this.data.removed = this.data.removed.filter((r) => r.uuid !== record.uuid || r.client !== record.client);
    await this.save();
  }

  /**
   * Flags a snapshot changed by hand (server/alterations.ts). Once set the flag stays: `foundAt` keeps the first
   * finding, `what` gathers every change found since.
   */
  async markAltered(record: SnapshotRecord, what: readonly Alteration[]): Promise<SnapshotRecord> {
    const i = this.data.snapshots.indexOf(record);
    if (i === -1) throw new CatalogError('snapshot_not_found', `no snapshot ${record.volume}/${record.name} in the catalog`);
    const known = record.altered?.what ?? [];
    const all = alterations.filter((a) => known.includes(a) || what.includes(a));
    if (record.altered !== null && all.length === known.length) return record;
    const next = { ...record, altered: { foundAt: record.altered?.foundAt ?? new Date().toISOString(), what: all } };
    this.data.snapshots[i] = next;
    await this.save();
    return next;
  }

  async removeSnapshot(record: SnapshotRecord, reason: string): Promise<void> {
    this.data.snapshots = this.data.snapshots.filter((s) => s !== record);
    const { client, volume, name, uuid } = record;
    this.data.removed.push({ client, volume, name, uuid, reason, removedAt: new Date().toISOString() });
    const ofVolume = this.removed(client, volume);
    if (ofVolume.length > REMOVED_KEPT_PER_VOLUME) {
      const drop = new Set(ofVolume.slice(0, ofVolume.length - REMOVED_KEPT_PER_VOLUME));
      this.data.removed = this.data.removed.filter((r) => !drop.has(r));
    }
    await this.save();
  }

  /** Saves are queued so two changes never interleave their writes; each save writes the newest state. */
  private save(): Promise<void> {
    const next = this.saving.then(() => this.writeAtomically());
    this.saving = next.catch(() => undefined);
    return next;
  }

  private async writeAtomically(): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    await writeFileDurably(this.file, JSON.stringify(this.data, null, 1));
  }

}
