/**
 * The catalog: which snapshots the server holds and which transfers it knows, per client and volume. One JSON file,
 * replaced atomically (write, fsync, rename, fsync the folder) on every change, so a crash leaves the old or the new
 * catalog and never half of one. Changes are rare (a transfer changing state), never per frame: per-frame progress
 * lives in each upload's frame index (server/spool/frame-index.ts).
 */
import fs from 'node:fs/promises';
import { writeWithReserve } from './catalog-reserve.ts';
import path from 'node:path';
import { z } from 'zod';
import { RemovedSnapshot, Snapshot, Transfer, alterations, finalStates, type Alteration } from '../core/protocol.ts';
import { SnapferryError } from '../core/errors.ts';
import { canMove, endsUnreceived } from './transfer-moves.ts';
import { namespacedUuid } from '../core/uuid-namespace.ts';

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
  /**
   * The subvolume's ctransid once received (core/btrfs/ctransid.ts): any change to it since moves it on, whatever was
   * done to its flags and Received UUID (server/alterations.ts). Absent on snapshots received before it was recorded,
   * and where it could not be read: learnt at the next look at the disk (Catalog.noteCtransid), not called a change.
   */
  ctransid: z.number().int().nonnegative().optional(),
  // `uuidUnknown` (from Snapshot): adopted from the disk without its transfer; `uuid` is then the Received UUID, until
  // learnUuids finds the client's.
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

/** Writes the catalog file's text durably (server/catalog-reserve.ts); a seam for tests of a write that fails. */
export type CatalogWriter = (file: string, text: string) => Promise<void>;

/** One change to the catalog, as a pure function of what it changes: run on the view now, on the file's data later. */
type Change = (data: CatalogFile) => CatalogFile;

export class Catalog {
  /**
   * What readers see: the file's data with the changes still being written on top. A change shows here at once
   * (the checks that run with a record in one turn rely on it, see Admission.begin), and is taken back if its write
   * fails: memory never keeps a state the file did not take. Before, a failed save left it in memory alone, and the
   * core went on as if it were on record (an end frame recorded `receiving` in memory while the file said
   * `uploading`, and no receive ran for ever).
   */
  private data: CatalogFile;
  /** What the file holds: the last write that succeeded. */
  private durable: CatalogFile;
  /** Changes shown in `data` and not yet written, in order. */
  private pending: Change[] = [];
  private saving: Promise<void> = Promise.resolve();
  private endListener: TransferEndListener | null = null;
  /**
   * Snapshots whose subvolume the server's retention is deleting now (server/retention.ts), in memory only. It records
   * the removal, with its reason, once the delete has succeeded; a look at the disk meanwhile (refreshVolume) that
   * finds the subvolume gone leaves the record to it.
   */
  private readonly deleting = new Set<string>();

  private constructor(
    private readonly file: string,
    data: CatalogFile,
    private readonly writer: CatalogWriter,
  ) {
    this.data = data;
    this.durable = data;
  }

  static async open(file: string, writer: CatalogWriter = writeWithReserve): Promise<Catalog> {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return new Catalog(file, { version: 1, transfers: [], snapshots: [], removed: [] }, writer);
      }
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      // Cut short or garbled (a disk that lost its tail, an edit by hand): the same advice as a record that is wrong.
      throw corrupt(file, `not JSON: ${(err as Error).message}`);
    }
    const parsed = CatalogFile.safeParse(json);
    if (!parsed.success) {
      // Where in the file, so that an admin can mend one record by hand rather than rebuild and lose the history.
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `at ${issue.path.map(String).join('.')}: ` : '';
      throw corrupt(file, `${where}${issue?.message ?? 'unknown'}`);
    }
    return new Catalog(file, parsed.data, writer);
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
    await this.change((data) => ({
      ...data,
      transfers: data.transfers.some((t) => t.id === parsed.id) ? data.transfers.map((t) => (t.id === parsed.id ? parsed : t)) : [...data.transfers, parsed],
    }));
  }

  /**
   * Changes a transfer: shown here at once, kept once on disk, taken back if the write fails (the promise rejects
   * with the write's error, a full disk's ENOSPC say, and the transfer is as the file has it). A change of state must
   * be one server/transfer-moves.ts allows, from the state the file has when the change is written too.
   */
  async updateTransfer(id: string, change: Partial<TransferRecord>): Promise<TransferRecord> {
    const current = this.transfer(id);
    if (!current) throw new CatalogError('transfer_not_found', `no transfer ${id}`);
    const updatedAt = new Date().toISOString();
    const apply = (t: TransferRecord): TransferRecord => {
      if (change.state !== undefined && !canMove(t.state, change.state)) {
        throw new CatalogError('transfer_state_conflict', `transfer ${id} cannot go from ${t.state} to ${change.state}`, {
          details: { transferId: id, from: t.state, to: change.state },
        });
      }
      return { ...t, ...change, updatedAt };
    };
    const next = apply(current);
    // Shown before the first await (server/expiry.ts relies on it). An ended transfer is thus final here while its
    // receive is still being stopped: what must wait for the stop asks the receives too
    // (server/transfers/volume-hold.ts).
    const saved = this.change((data) => {
      const t = data.transfers.find((x) => x.id === id);
      if (!t) throw new CatalogError('transfer_not_found', `no transfer ${id}`);
      return { ...data, transfers: data.transfers.map((x) => (x === t ? apply(x) : x)) };
    });
    const ended = endsUnreceived(current.state, next.state) ? this.endListener?.(next) : undefined;
    try {
      await saved;
    } finally {
      // Even when the save failed: its receive was stopped, and one that is still to run starts again (with the next
      // frame, or from the spool: the state the file has says which).
      await ended;
    }
    return this.transfer(id) ?? next;
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
    await this.change((data) => ({ ...data, transfers: data.transfers.filter((t) => !(ids.has(t.id) && finalStates.includes(t.state))) }));
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

  /**
   * Learns the client UUIDs of `client`'s snapshots adopted without them (`uuidUnknown`, server/uuid-namespace.ts):
   * one of `uuids` is a snapshot's when namespacedUuid(client, it) is its Received UUID on disk, proof enough (a v5
   * UUID of another name cannot be it). Kept on disk, so that lookups by UUID, a restore's toClient and the saved
   * digest's name are right from then on. Returns the snapshots learnt. Called wherever a client names its UUIDs,
   * before they are looked up.
   */
  async learnUuids(client: string, uuids: Iterable<string | null | undefined>): Promise<SnapshotRecord[]> {
    const unknown = this.data.snapshots.filter((s) => s.client === client && s.uuidUnknown);
    if (unknown.length === 0) return [];
    const byDisk = new Map<string, string>();
    for (const u of uuids) if (u) byDisk.set(namespacedUuid(client, u), u.toLowerCase());
    const learnt = (s: SnapshotRecord): SnapshotRecord | null => {
      const own = s.client === client && s.uuidUnknown && s.receivedUuid !== undefined ? byDisk.get(s.receivedUuid) : undefined;
      if (own === undefined) return null;
      const { uuidUnknown: _u, ...known } = s;
      return { ...known, uuid: own };
    };
    if (!unknown.some((s) => learnt(s) !== null)) return [];
    await this.change((data) => ({ ...data, snapshots: data.snapshots.map((s) => learnt(s) ?? s) }));
    return this.data.snapshots.filter((s) => s.client === client && unknown.some((o) => sameSnapshot(o, s)) && !s.uuidUnknown);
  }

  async addSnapshot(record: SnapshotRecord): Promise<void> {
    const parsed = SnapshotRecord.parse(record);
    await this.change((data) => ({
      ...data,
      snapshots: [...data.snapshots.filter((s) => !sameSnapshot(s, parsed)), parsed],
      removed: data.removed.filter((r) => r.uuid !== record.uuid || r.client !== record.client),
    }));
  }

  /**
   * Flags a snapshot changed by hand (server/alterations.ts). Once set the flag stays: `foundAt` keeps the first
   * finding, `what` gathers every change found since. The record is found by what names it (client, volume, name)
   * and the subvolume it stands for (uuid), never by identity: a record the caller read earlier may have been
   * replaced since (flagged by another finding, or shown again over the file's data after a write failed), and the
   * finding still holds for the snapshot it was made of. Another snapshot received under the name since is not it.
   */
  async markAltered(record: SnapshotRecord, what: readonly Alteration[]): Promise<SnapshotRecord> {
    const isIt = (s: SnapshotRecord) => sameSnapshot(s, record) && s.uuid === record.uuid;
    const current = this.data.snapshots.find(isIt);
    if (!current) throw new CatalogError('snapshot_not_found', `no snapshot ${record.volume}/${record.name} in the catalog`);
    const foundAt = new Date().toISOString();
    // On the record as each view holds it (the file's may differ from the one shown): what it was found with stays.
    const flag = (s: SnapshotRecord): SnapshotRecord => {
      const known = s.altered?.what ?? [];
      const all = alterations.filter((a) => known.includes(a) || what.includes(a));
      if (s.altered !== null && all.length === known.length) return s;
      return { ...s, altered: { foundAt: s.altered?.foundAt ?? foundAt, what: all } };
    };
    const next = flag(current);
    if (next === current) return current;
    await this.change((data) => ({ ...data, snapshots: data.snapshots.map((s) => (s === current ? next : isIt(s) ? flag(s) : s)) }));
    return this.data.snapshots.find(isIt) ?? next;
  }

  /**
   * Records the ctransid of a snapshot that has none on record (catalogued before it was recorded): what the disk
   * says at the first look is taken as it was received, as nothing else can tell. One that has one keeps it.
   */
  async noteCtransid(record: SnapshotRecord, ctransid: number): Promise<void> {
    const isIt = (s: SnapshotRecord) => sameSnapshot(s, record) && s.uuid === record.uuid && s.ctransid === undefined;
    if (!this.data.snapshots.some(isIt)) return;
    await this.change((data) => ({ ...data, snapshots: data.snapshots.map((s) => (isIt(s) ? { ...s, ctransid } : s)) }));
  }

  /** Marks a snapshot as being deleted (see `deleting`) while `work` runs. */
  async whileDeleting<T>(record: SnapshotRecord, work: () => Promise<T>): Promise<T> {
    const key = deletingKey(record);
    this.deleting.add(key);
    try {
      return await work();
    } finally {
      this.deleting.delete(key);
    }
  }

  beingDeleted(record: SnapshotRecord): boolean {
    return this.deleting.has(deletingKey(record));
  }

  async removeSnapshot(record: SnapshotRecord, reason: string): Promise<void> {
    const { client, volume, name, uuid } = record;
    const note: RemovedRecord = { client, volume, name, uuid, reason, removedAt: new Date().toISOString() };
    await this.change((data) => {
      let removed = [...data.removed, note];
      const ofVolume = removed.filter((r) => r.client === client && r.volume === volume);
      if (ofVolume.length > REMOVED_KEPT_PER_VOLUME) {
        const drop = new Set(ofVolume.slice(0, ofVolume.length - REMOVED_KEPT_PER_VOLUME));
        removed = removed.filter((r) => !drop.has(r));
      }
      return { ...data, snapshots: data.snapshots.filter((s) => !sameSnapshot(s, record)), removed };
    });
  }

  /**
   * Shows `apply` at once (it throws, changing nothing, when it does not apply) and writes it after the changes
   * before it, each on what the file holds then. Writes are queued so that two never interleave. A write that fails
   * takes its change back: what readers see is again the file's data with the changes still to be written on top.
   */
  private change(apply: Change): Promise<void> {
    this.data = apply(this.data);
    this.pending.push(apply);
    const written = this.saving.then(async () => {
      try {
        const next = apply(this.durable);
        await this.writeAtomically(next);
        this.durable = next;
        this.pending = this.pending.filter((c) => c !== apply);
      } catch (err) {
        this.pending = this.pending.filter((c) => c !== apply);
        this.data = this.pending.reduce(applyIfAllowed, this.durable);
        throw err;
      }
    });
    this.saving = written.catch(() => undefined);
    return written;
  }

  private async writeAtomically(data: CatalogFile): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    await this.writer(this.file, JSON.stringify(data, null, 1));
  }

}

function corrupt(file: string, why: string): CatalogError {
  return new CatalogError(
    'catalog_corrupt',
    `the catalog ${file} is not valid (${why}); restore it from a backup or move it away to rebuild it from the ` +
      'subvolumes on disk',
  );
}

/** The same snapshot record: one name per volume. */
function sameSnapshot(a: SnapshotRecord, b: SnapshotRecord): boolean {
  return a.client === b.client && a.volume === b.volume && a.name === b.name;
}

/**
 * A change still to be written, shown again over the file's data after another's write failed; one that no longer
 * applies (it built on the change taken back) shows nothing, and its own write fails the same way.
 */
function applyIfAllowed(data: CatalogFile, apply: Change): CatalogFile {
  try {
    return apply(data);
  } catch {
    return data;
  }
}

function deletingKey(record: SnapshotRecord): string {
  return `${record.client}/${record.volume}/${record.uuid}`;
}
