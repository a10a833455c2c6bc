/**
 * The upload store over the spool (server/spool/): a tus upload is its record (record.ts) and its spool, and a
 * request's bytes go to ingest (server/ingest.ts), which appends the frames that verify and hands them on to the
 * receive. The concerns around it (whose upload it is, expiry, quota, a full disk) are wrappers (index.ts).
 */
import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { SnapferryError } from '../../core/errors.ts';
import { META } from '../../core/protocol.ts';
import type { Spool } from '../spool/spool.ts';
import type { ServerLayout } from '../layout.ts';
import { readUploadRecord, writeUploadRecord, type UploadRecord } from './record.ts';
import type { NewUpload, UploadInfo, UploadStore } from './store.ts';

/** Where an upload's verified frames go: server/ingest.ts. */
export interface FrameIngest {
  write(id: string, body: Readable, offset: number, chunkSize: number): Promise<number>;
}

/** Records kept in memory: those of the uploads in progress, as a server has few at once. */
const RECORDS_KEPT = 256;

export class SpoolUploads implements UploadStore {
  readonly expireAfterMs = 0;
  private readonly layout: ServerLayout;
  /**
   * tus's records read lately. A record never changes once written, and every HEAD and PATCH asks for
   * it, a PATCH twice (the upload, then its chunk size): read each time, it cost a PATCH about 4 ms of the time the
   * line waits between two. A spool found gone forgets its record (goneError).
   */
  private readonly records = new LRUCache<string, UploadRecord>({ max: RECORDS_KEPT });

  constructor(
    private readonly spool: Spool,
    private readonly ingest: FrameIngest,
  ) {
    this.layout = spool.layout;
  }

  async create(upload: NewUpload): Promise<void> {
    await this.spool.create(upload.id);
    await writeUploadRecord(this.layout, upload);
    this.records.set(upload.id, { id: upload.id, metadata: upload.metadata, creationDate: upload.creationDate });
  }

  /**
   * The upload as a HEAD sees it: repaired after any crash (server/spool/spool.ts), at the spool's size. The length
   * is shown only once the end frame verified. A client whose last PATCH was cut sends it again with an Upload-Length
   * (tus-js-client does so on every PATCH after a resume), sometimes while the cut one is still being taken apart;
   * @tus/server refuses any Upload-Length on an upload whose length it sees (400), which would end the upload for good.
   * Hidden, the length reaches declareLength below.
   */
  async get(id: string): Promise<UploadInfo> {
    const record = await this.record(id);
    const open = await this.spool.open(id).catch((err: NodeJS.ErrnoException) => this.goneError(id, err));
    return {
      id, metadata: record.metadata, creationDate: record.creationDate, offset: open.size,
      size: open.progress.complete ? open.progress.wireOffset : undefined,
    };
  }

  async write(id: string, body: Readable, offset: number): Promise<number> {
    const record = await this.record(id);
    // Validated when the upload was created (server/replication.ts beginTransfer).
    return this.ingest.write(id, body, offset, Number(record.metadata[META.chunkSize])).catch((err: NodeJS.ErrnoException) => this.goneError(id, err));
  }

  /**
   * A declared length binds nothing until the end frame verified, and is never stored: the end frame says the length
   * itself. A length declared with a PATCH that was then cut would otherwise outlive it, and a client that resumed and
   * framed the tail anew (another compression level, other frame sizes) could never finish: every PATCH refused for a
   * length that no stream it can send adds up to. @tus/server still bounds this request's body by the length it was
   * given.
   */
  async declareLength(id: string, length: number): Promise<void> {
    await this.record(id);
    const { complete, wireOffset } = await this.spool.progress(id);
    if (complete && wireOffset !== length) {
      throw new SnapferryError('length_mismatch', `the upload is complete at ${wireOffset} bytes, not ${length}`, {
        details: { length: wireOffset, sent: length },
      });
    }
  }

  async remove(id: string): Promise<void> {
    await this.record(id);
    this.records.delete(id);
    await this.spool.drop(id);
  }

  expire(): Promise<number> {
    return Promise.resolve(0);
  }

  private async record(id: string): Promise<UploadRecord> {
    const known = this.records.get(id);
    if (known) return known;
    const record = await readUploadRecord(this.layout, id);
    if (record === null) throw notFound(id);
    this.records.set(id, record);
    return record;
  }

  /**
   * A spool file that is not there: the upload gone (410, as @tus/file-store answered it) when its record still is,
   * else not found, as when the record was read before its spool (a record kept in memory may outlive its file).
   */
  private async goneError(id: string, err: NodeJS.ErrnoException): Promise<never> {
    if (err.code !== 'ENOENT') throw err;
    this.records.delete(id);
    if ((await readUploadRecord(this.layout, id)) === null) throw notFound(id);
    throw new SnapferryError('upload_gone', `upload ${id} no longer holds its data`, { details: { transferId: id } });
  }
}

function notFound(id: string): SnapferryError {
  return new SnapferryError('not_found', `upload ${id} not found`, { details: { transferId: id } });
}
