/**
 * The upload store, composed: the spool's store (spool-uploads.ts) inside the wrappers, each adding one concern, as
 * restic's backend wrappers each wrap a Backend. Innermost first: whose upload it is (ownership.ts), expiry
 * (expiry.ts), the client's quota (quota.ts), a full disk (full-disk.ts). tus sees the outermost through its one
 * adapter (tus-store.ts).
 */
import type { Spool } from '../spool/spool.ts';
import { DiskFullUploads, type FullDiskJudge } from './full-disk.ts';
import { ExpiringUploads, type ExpiryHooks } from './expiry.ts';
import { OwnedUploads, type UploadOwner } from './ownership.ts';
import { QuotaUploads, type UploadGuard } from './quota.ts';
import { SpoolUploads, type FrameIngest } from './spool-uploads.ts';
import type { UploadStore } from './store.ts';

export type { UploadStore, UploadInfo, NewUpload } from './store.ts';
export type { ExpiryHooks, ExpiredUpload } from './expiry.ts';
export type { UploadGuard, WriteMeter } from './quota.ts';
export type { UploadOwner } from './ownership.ts';
export type { FrameIngest } from './spool-uploads.ts';
export type { FullDiskJudge } from './full-disk.ts';

export interface UploadStoreParts {
  spool: Spool;
  /** Where a request's bytes go (server/ingest.ts). */
  ingest: FrameIngest;
  owner: UploadOwner;
  expiry: ExpiryHooks;
  /** 0: uploads never expire. */
  expireAfterMs: number;
  quota: UploadGuard;
  /** Whether an upload that found the disk full could ever fit on the filesystem (server/upload-room.ts). */
  fullDisk: FullDiskJudge;
}

export function uploadStore(parts: UploadStoreParts): UploadStore {
  const { spool } = parts;
  const owned = new OwnedUploads(new SpoolUploads(spool, parts.ingest), parts.owner);
  const expiring = new ExpiringUploads(owned, spool, parts.expiry, parts.expireAfterMs);
  return new DiskFullUploads(new QuotaUploads(expiring, parts.quota, (id, admit) => spool.gateIndex(id, admit)), parts.fullDisk);
}
