/**
 * The core's side of a client's byte quota (server/upload-limits.ts), as the guard the upload store's quota wrapper
 * asks (server/upload-store/quota.ts): what the client's uploads hold in the spool (server/spool/usage.ts), whether a
 * declared length fits beside it, and a meter for each write. A refusal ends nothing: the upload keeps what arrived
 * (UploadGuard.onRefused says why).
 */
import { SnapferryError } from '../core/errors.ts';
import { inProgress } from '../core/protocol.ts';
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
  /** Whether a push holds upload `id` right now (its lease, server/leases.ts). */
  sending(id: string): boolean;
}

export function uploadQuota(deps: QuotaDeps): UploadGuard {
  const { catalog, layout, usage, limits, log } = deps;
  const transferOf = (id: string) => {
    const t = catalog.transfer(id);
    if (!t) throw new SnapferryError('not_found', `transfer ${id} not found`);
    return t;
  };
  /**
   * Whether upload `id`'s bytes will go without anyone's doing: one a push is sending, or a whole stream waiting for
   * or in its receive. An upload nobody sends (a quota refusal keeps it, a cut leaves it) or a failed transfer's spool
   * holds its bytes until it is aborted or expires.
   */
  const moving = (id: string) => {
    const t = catalog.transfer(id);
    if (t === undefined) return false;
    return t.state === 'uploading' ? deps.sending(id) : inProgress(t.state);
  };
  const idleAmong = (each: ReadonlyMap<string, number>, own: string) => {
    let idle = 0;
    for (const [id, n] of each) if (id !== own && !moving(id)) idle += n;
    return idle;
  };
  return {
    /** An upload that declares its whole stream to be `size` bytes: it must fit beside what the client holds. */
    async checkSize(id: string, size: number, kept: boolean): Promise<SnapferryError | null> {
      const t = catalog.transfer(id);
      if (!t) return new SnapferryError('not_found', `transfer ${id} not found`);
      // What the upload holds of its stream already is part of `size`; its other files (tus's record, the frame
      // index) are its own too, never its client's other uploads'.
      const spool = (await spoolsOnDisk(layout)).find((s) => s.id === id);
      const whole = size + (spool ? spool.bytes - spool.streamBytes : 0);
      const each = await usage.each(t.client);
      let others = 0;
      for (const [other, n] of each) if (other !== id) others += n;
      if (whole + others <= limits.quotaBytes) return null;
      return quotaExceeded({
        client: t.client, size: whole, quota: limits.quotaBytes, heldByOthers: others, heldByIdle: idleAmong(each, id), sizeIsExact: true, keptAs: kept ? id : null,
      });
    },

    /** The quota's meter for one write: the client's bytes as the upload grows, the disk looked at again when stale. */
    async openWrite(id: string, offset: number): Promise<WriteMeter> {
      const t = transferOf(id);
      const quota = limits.quotaBytes;
      const writing = await usage.begin(t.client, id, offset);
      // Judged on what the upload holds whole, its record and frame index too: counted as its other uploads', they
      // made a refusal that waiting can never heal look retryable, and the push tried it again and again.
      const judge = (total: number) => {
        if (total <= quota) return null;
        const own = writing.held();
        return quotaExceeded({ client: t.client, size: own, quota, heldByOthers: total - own, heldByIdle: idleAmong(writing.each(), id), sizeIsExact: false, keptAs: id });
      };
      return {
        admit: (bytes) => {
          writing.reach(bytes);
          const now = writing.total();
          // Over by a measure that may be stale (a spool deleted since), or no measure to go by: the disk decides.
          if (now !== null && now <= quota) return null;
          return writing.measure().then(judge);
        },
        close: () => writing.end(),
      };
    },

    /**
     * A refusal, final or not, ends nothing: the upload stays unfinished with what has arrived, counted against the
     * quota, as a cut one does. Failed and deleted, it threw away days of a slow line's upload, which the next push,
     * once the admin had raised the quota, sent again from byte 0; kept, that push resumes it. It goes as any
     * unfinished upload goes: received, aborted (snapferry abort ID, a tus DELETE), or expired when no push comes back.
     */
    onRefused(id: string, err: SnapferryError): Promise<void> {
      log.warn({ transfer: id, code: err.code, details: err.details }, err.message);
      return Promise.resolve();
    },
  };
}
