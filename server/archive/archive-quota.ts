/**
 * A client's byte quota in an archive: the guard the upload store's quota wrapper asks (server/upload-store/quota.ts,
 * the wrapper a btrfs server's store has too), over what the bucket holds of the client's uploads in progress. The
 * rule is a btrfs server's (server/upload-quota.ts): the bytes of the client's unfinished uploads count, a stored
 * stream does not (a received snapshot does not either). An upload holds the segments its state.json records;
 * client-uploads.ts finds the client's open ones without listing the bucket.
 *
 * A write counts the client's other uploads at what they had recorded when it began, and looks again every
 * REMEASURE_BYTES it grows and before it refuses: two uploads of one client written at once through two instances
 * see each other's segments only as they are recorded (every 64 MiB or 30 s), so together they may pass the quota by
 * about that much each, where a btrfs server counts each byte of both as it arrives.
 */
import type { SnapferryError } from '../../core/errors.ts';
import type { SafeName } from '../../core/names.ts';
import type { Logger } from '../log.ts';
import type { UploadGuard, WriteMeter } from '../upload-store/quota.ts';
import { quotaExceeded, type QuotaExceeded, type UploadLimits } from '../upload-limits.ts';
import type { ObjectStore } from './object-store.ts';
import { settle } from './client-uploads.ts';
import { SEGMENT_LIMITS } from './segment-append.ts';

/** A write looks at the client's other uploads again after growing this much (a segment's worth). */
export const REMEASURE_BYTES = SEGMENT_LIMITS.segmentBytes;

export interface ArchiveQuotaDeps {
  objects: ObjectStore;
  limits: Readonly<UploadLimits>;
  log: Logger;
  /** The client that owns upload `id` (its transfer.json). */
  clientOf(id: string): Promise<SafeName>;
}

export function archiveQuota(deps: ArchiveQuotaDeps): UploadGuard {
  const { objects, limits, log } = deps;
  const quota = limits.quotaBytes;
  /** What the client's other open uploads hold in the bucket now. */
  const othersOf = async (client: SafeName, id: string): Promise<number> =>
    (await settle(objects, client)).open.filter((u) => u.id !== id).reduce((n, u) => n + u.bytes, 0);
  return {
    async checkSize(id: string, size: number, kept: boolean): Promise<SnapferryError | null> {
      const client = await deps.clientOf(id);
      const others = await othersOf(client, id);
      return size + others > quota ? quotaExceeded({ client, size, quota, heldByOthers: others, sizeIsExact: true, keptAs: kept ? id : null }) : null;
    },

    async openWrite(id: string, offset: number): Promise<WriteMeter> {
      const client = await deps.clientOf(id);
      let others = await othersOf(client, id);
      let measuredAt = offset;
      const measure = async (bytes: number): Promise<QuotaExceeded | null> => {
        others = await othersOf(client, id);
        measuredAt = bytes;
        return bytes + others > quota ? quotaExceeded({ client, size: bytes, quota, heldByOthers: others, sizeIsExact: false, keptAs: id }) : null;
      };
      return {
        // Over by a count that may be stale (another upload of the client ended since), or a segment's growth since
        // the last look: the bucket decides.
        admit: (bytes) => (bytes + others <= quota && bytes - measuredAt < REMEASURE_BYTES ? null : measure(bytes)),
        close: () => undefined,
      };
    },

    /**
     * As on a btrfs server (server/upload-quota.ts): a refusal ends nothing; the upload keeps the segments it has, to
     * be resumed once the quota is raised, and goes as any open upload goes (stored, aborted, or expired).
     */
    onRefused(id: string, err: SnapferryError): Promise<void> {
      log.warn({ transfer: id, code: err.code, details: err.details }, err.message);
      return Promise.resolve();
    },
  };
}
