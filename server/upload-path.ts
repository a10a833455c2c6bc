/**
 * The way a push's bytes come in, put together: the upload store tus writes through (server/upload-store/), its
 * wrappers' rules taken from the catalog (ownership, expiry, quota), and the ingest that hands each verified frame
 * to the running receive (server/ingest.ts).
 */
import type { Catalog } from './catalog.ts';
import { parentAsReceived } from './disk-truth.ts';
import { expiryHooks } from './expiry.ts';
import { Ingest, type IngestDeps } from './ingest.ts';
import type { ServerLayout } from './layout.ts';
import type { UploadLeases } from './leases.ts';
import type { LiveReceives } from './live-receives.ts';
import type { Logger } from './log.ts';
import type { Spool } from './spool/spool.ts';
import type { SpoolUsage } from './spool/usage.ts';
import type { UploadLimits } from './upload-limits.ts';
import { uploadQuota } from './upload-quota.ts';
import { uploadRoom } from './upload-room.ts';
import { uploadStore, type UploadStore } from './upload-store/index.ts';

export interface UploadPathDeps {
  layout: ServerLayout;
  catalog: Catalog;
  log: Logger;
  spool: Spool;
  receives: LiveReceives;
  leases: UploadLeases;
  leaseMs: number;
  /** 0: uploads never expire. */
  expireAfterMs: number;
  usage: SpoolUsage;
  limits: Readonly<UploadLimits>;
  /** Ends a transfer (a tus DELETE of an upload in progress aborts it). */
  endTransfer: (id: string) => Promise<void>;
  /** An end frame whose record the catalog could not save (server/ingest.ts IngestDeps). */
  endNotRecorded: IngestDeps['endNotRecorded'];
}

export function uploadPath(deps: UploadPathDeps): UploadStore {
  const { layout, catalog, log, spool, receives, leases, leaseMs, expireAfterMs, usage, limits } = deps;
  const ingest = new Ingest({
    spool, catalog, receives, log, parentAsReceived: (t) => parentAsReceived({ catalog, layout }, t), endNotRecorded: deps.endNotRecorded,
  });
  const expiry = expiryHooks({ catalog, leases, leaseMs, expireAfterMs, log });
  return uploadStore({
    spool,
    ingest,
    owner: { closedError: (id) => ingest.closedError(id), terminate: deps.endTransfer },
    // An expired upload's receive stops as its transfer fails (Catalog.onTransferEnd), before its spool goes.
    expiry,
    expireAfterMs,
    quota: uploadQuota({ catalog, layout, usage, limits, log, sending: (id) => leases.held(id) }),
    fullDisk: uploadRoom({ layout, catalog, spool, log }),
  });
}
