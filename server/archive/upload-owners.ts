/**
 * Which client owns each archive upload: its transfer record (archive-transfer.ts), written once when the upload is
 * created, on any instance. An owner never changes, so what this instance has looked up is kept and never goes
 * stale; a request naming an upload begun on another instance is looked up in the bucket first (lookUp).
 */
import { SnapferryError } from '../../core/errors.ts';
import type { SafeName } from '../../core/names.ts';
import { NotFound } from '../transfers/errors.ts';
import type { ObjectStore } from './object-store.ts';
import { readTransferRecord, type TransferRecord } from './archive-transfer.ts';

/** An upload id as this server makes them; anything else is not one of ours and is not looked for in the bucket. */
const UPLOAD_ID = /^[0-9a-f]{32}$/;

export class UploadOwners {
  private readonly owners = new Map<string, string>();

  constructor(private readonly objects: ObjectStore) {}

  /** An upload this instance has just created. */
  note(id: string, client: SafeName): void {
    this.owners.set(id, client);
  }

  /** The owner of `id` if known here; lookUp() first for an upload another instance may have begun. */
  of(id: string): string | undefined {
    return this.owners.get(id);
  }

  async lookUp(id: string): Promise<void> {
    if (this.owners.has(id)) return;
    // Not an id of ours: nothing to look up, and the ownership check answers 404.
    if (!UPLOAD_ID.test(id)) return;
    const record = await readTransferRecord(this.objects, id);
    if (record) this.owners.set(id, record.client);
  }

  /** The client of upload `id`: known from the request's ownership check (lookUp) on every tus request, else read. */
  async clientOf(id: string): Promise<SafeName> {
    return (this.owners.get(id) ?? (await this.record(id)).client) as SafeName;
  }

  /** The transfer record of `id` if `client` owns it; another client's is reported as missing, like a missing one. */
  async owned(client: SafeName, id: string): Promise<TransferRecord> {
    const record = UPLOAD_ID.test(id) ? await readTransferRecord(this.objects, id) : null;
    if (!record || record.client !== client) throw new NotFound(`transfer ${id}`);
    return record;
  }

  /** The transfer record of an upload that must have one (its state is in the bucket). */
  async record(id: string): Promise<TransferRecord> {
    const record = await readTransferRecord(this.objects, id);
    if (!record) throw new SnapferryError('archive_object_corrupt', `upload ${id} has no transfer record in the archive`, { details: { transferId: id } });
    return record;
  }
}
