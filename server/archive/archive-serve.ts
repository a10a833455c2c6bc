/**
 * Starts an archive server (`serve` with `store:` in its config, docs/archive.md): the HTTP layer every server has
 * (server/serve.ts startHttp) over the archive service on an S3 bucket. No btrfs root, no lock on a local folder:
 * instances share the bucket, and what keeps their writes apart lives in it (leases, compare-and-swap).
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { startHttp, type HttpOptions, type RunningServer } from '../serve.ts';
import { DEFAULT_EXPIRE_AFTER_MS } from '../expiry.ts';
import { s3ObjectStore } from './object-store.ts';
import { ArchiveService } from './archive-service.ts';
import type { ChainRules } from './chains.ts';
import type { ArchiveRetentionLookup } from './archive-upkeep.ts';
import { storeLabel, type StoreSettings } from './store-config.ts';
import type { UploadLimits } from '../upload-limits.ts';

export interface ArchiveServeOptions extends HttpOptions {
  store: StoreSettings;
  /** This instance's name in the bucket's leases; default host, pid and a random part (unique per start). */
  holder?: string;
  chains?: ChainRules;
  /** Per client, as on a btrfs server (quota, open uploads, creation rate), counted in the bucket across instances. */
  limits?: Partial<UploadLimits>;
  /** Each volume's retention policy (server/config.ts retentionFor); default: keep everything. */
  retention?: ArchiveRetentionLookup;
  /** How long an ended upload's tombstone stays (endedTransfers.keepFor); default 7 days. */
  keepEndedMs?: number;
  /** How often the archive's upkeep (retention, sweep of ended uploads) runs, and once at start; default ARCHIVE_UPKEEP_MS; 0: never. */
  upkeepEveryMs?: number;
}

export function startArchiveServer(options: ArchiveServeOptions): Promise<RunningServer<ArchiveService>> {
  return startHttp(options, async () => {
    const { endpoint, bucket, prefix, region, credentials } = options.store;
    const objects = s3ObjectStore({ endpoint, bucket, prefix, region, ...credentials });
    const where = storeLabel(options.store);
    const service = new ArchiveService({
      objects, where, log: options.log, expireAfterMs: options.expireAfterMs ?? DEFAULT_EXPIRE_AFTER_MS,
      holder: options.holder ?? `${os.hostname()}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`,
      ...(options.store.leaseMs !== undefined ? { leaseMs: options.store.leaseMs } : {}),
      ...(options.chains ? { chains: options.chains } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.retention ? { retention: options.retention } : {}),
      ...(options.keepEndedMs !== undefined ? { keepEndedMs: options.keepEndedMs } : {}),
      ...(options.upkeepEveryMs !== undefined ? { upkeepEveryMs: options.upkeepEveryMs } : {}),
    });
    await service.start();
    return { service, where: { store: where }, close: () => service.close() };
  });
}

/** Where an archive server keeps its streams, for the line `serve` prints. */
