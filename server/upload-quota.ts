/**
 * The core's side of a client's byte quota (server/upload-limits.ts), as the guard the upload store's quota wrapper
 * asks (server/upload-store/quota.ts): what the client's uploads hold in the spool (server/spool/usage.ts), whether a
 * declared length fits beside it, a meter for each write, and what a refusal does to the transfer.
 */
import { SnapferryError } from '../core/errors.ts';
import type { Catalog } from './catalog.ts';
import type { ServerLayout } from './layout.ts';
import type { Logger } from './log.ts';
import { spoolsOnDisk } from './orphan-spools.ts';
import type { SpoolUsage } from './spool/usage.ts';
import type { UploadGuard, WriteMeter } from './upload-store/quota.ts';
import { quotaExceeded, type UploadLimits } from './upload-limits.ts';

export interface QuotaDeps {
  catalog: Catalog;
  layout: ServerLayout;
  usage: SpoolUsage;
  limits: Readonly<UploadLimits>;
  log: Logger;
  /** Deletes an upload's spool (server/spool/spool.ts drop). */
  drop(id: string): Promise<void>;
}

export function uploadQuota(deps: QuotaDeps): UploadGuard {
  const { catalog, layout, usage, limits, log } = deps;
  const transferOf = (id: string) => {
    const t = catalog.transfer(id);
    if (!t) throw new SnapferryError('not_found', `transfer ${id} not found`);
    return t;
  };
  return {
    /** An upload that declares its whole stream to be `size` bytes: it must fit beside what the client holds. */
    async checkSize(id: string, size: number): Promise<SnapferryError | null> {
      const t = catalog.transfer(id);
      if (!t) return new SnapferryError('not_found', `transfer ${id} not found`);
      // What the upload holds of its stream already is part of `size`.
      const own = (await spoolsOnDisk(layout)).find((s) => s.id === id)?.streamBytes ?? 0;
      const others = (await usage.total(t.client)) - own;
      return size + others > limits.quotaBytes ? quotaExceeded(t.client, size, limits.quotaBytes, others, true) : null;
    },

    /** The quota's meter for one write: the client's bytes as the upload grows, the disk looked at again when stale. */
    async openWrite(id: string, offset: number): Promise<WriteMeter> {
      const t = transferOf(id);
      const quota = limits.quotaBytes;
      const writing = await usage.begin(t.client, id, offset);
      const judge = (bytes: number, total: number) => (total > quota ? quotaExceeded(t.client, bytes, quota, total - bytes, false) : null);
      return {
        admit: (bytes) => {
          writing.reach(bytes);
          const now = writing.total();
          // Over by a measure that may be stale (a spool deleted since), or no measure to go by: the disk decides.
          if (now !== null && now <= quota) return null;
          return writing.measure().then((total) => judge(bytes, total));
        },
        close: () => writing.end(),
      };
    },

    /**
     * An upload refused for its size: one that can never fit is failed (and its spool freed) so the volume is free.
     * Its receive stops as it fails (Catalog.onTransferEnd), before the refusal is answered.
     */
    async onRefused(id: string, err: SnapferryError): Promise<void> {
      log.warn({ transfer: id, code: err.code, details: err.details }, err.message);
      if (err.retryable) return;
      await catalog.updateTransfer(id, { state: 'failed', error: { code: err.code, message: err.message, at: new Date().toISOString() } });
      // After the refusing request has let go of the spool.
      setImmediate(() => void deps.drop(id).catch(() => undefined));
    },
  };
}
