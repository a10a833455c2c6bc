/**
 * The way a push's bytes come into the archive, put together, as server/upload-path.ts is a btrfs server's: the
 * uploads in the bucket (segment-uploads.ts, the spool that any instance can take on) under the bucket's leases, and
 * around them the client's byte quota (server/upload-store/quota.ts over archive-quota.ts), which is what tus writes
 * through.
 */
import type { SafeName } from '../../core/names.ts';
import type { Logger } from '../log.ts';
import type { UploadLimits } from '../upload-limits.ts';
import { QuotaUploads } from '../upload-store/quota.ts';
import type { UploadStore } from '../upload-store/store.ts';
import type { ObjectStore } from './object-store.ts';
import { bucketLeases } from './upload-lease.ts';
import { archiveQuota } from './archive-quota.ts';
import { SegmentUploads } from './segment-uploads.ts';
import type { SegmentRecord } from './upload-state.ts';
import type { FirstFrame } from './segment-append.ts';
import { SnapferryError } from '../../core/errors.ts';

export interface ArchiveUploadPathDeps {
  objects: ObjectStore;
  log: Logger;
  /** This instance's name in the bucket's leases. */
  holder: string;
  /** The lease on an upload (lease.ts); undefined: its default. */
  leaseMs: number | undefined;
  /** 0: uploads never expire. */
  expireAfterMs: number;
  limits: Readonly<UploadLimits>;
  clientOf(id: string): Promise<SafeName>;
  /** Upload `id`'s frame 0 has verified: throws to refuse the stream before any of it is stored (archive-admission.ts). */
  start(id: string, first: FirstFrame): Promise<void>;
  /** Upload `id`'s end frame is stored: record the stream (archive-lifecycle.ts). */
  complete(id: string, segments: readonly SegmentRecord[]): Promise<void>;
  /** Ends an upload the server refused for good (frame 0's), failed with `refusal` (archive-lifecycle.ts). */
  end(id: string, refusal: SnapferryError): Promise<void>;
}

export interface ArchiveUploadPath {
  /** The uploads in the bucket, unguarded (their progress, removal, what has arrived). */
  uploads: SegmentUploads;
  /** What tus writes through: the uploads, inside the client's quota. */
  store: UploadStore;
}

export function archiveUploadPath(deps: ArchiveUploadPathDeps): ArchiveUploadPath {
  const { objects, log, limits } = deps;
  const uploads = new SegmentUploads({
    objects, leases: bucketLeases(objects, deps.holder, deps.leaseMs !== undefined ? { leaseMs: deps.leaseMs } : {}), expireAfterMs: deps.expireAfterMs,
    // A sealed stream is stored as it is (the archive verifies ciphertext and never needs a key), as is a plain one.
    sink: (id) => ({ start: (first) => startOrEnd(deps, id, first), complete: (_p, segments) => deps.complete(id, segments) }),
  });
  const store = new QuotaUploads(uploads, archiveQuota({
    objects, limits, log,
    // Known from the request's ownership check (lookUpUpload) on every tus request: no read.
    clientOf: (id) => deps.clientOf(id),
    // Segments in the bucket have no frame index to grow: the meter counts their bytes only.
  }), () => () => undefined);
  return { uploads, store };
}

/**
 * Frame 0 through deps.start. A final refusal (a stream that can never be stored: sealing_mismatch, parent_changed)
 * has ended the upload before the refusal is answered (SegmentUploads: a tombstone that carries it, so the transfer
 * shows failed with it); deps.end then frees its client's open-upload slot, after the
 * refusing request has let go of it (the upload's lock is that request's until then).
 */
async function startOrEnd(deps: ArchiveUploadPathDeps, id: string, first: FirstFrame): Promise<void> {
  try {
    await deps.start(id, first);
  } catch (err) {
    if (err instanceof SnapferryError && !err.retryable) {
      deps.log.warn({ transfer: id, code: err.code, details: err.details }, err.message);
      setImmediate(() => void deps.end(id, err).catch((e: unknown) => deps.log.warn({ transfer: id, err: e }, 'could not end a refused upload')));
    }
    throw err;
  }
}
