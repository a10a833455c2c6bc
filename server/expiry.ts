/**
 * Abandoned uploads expire (tus's expiration extension, issue 7). A seed over a slow link takes days and is cut
 * daily, so an upload is dated by its last activity, not its creation: one that no request has touched for
 * `expireAfterMs` is deleted (spool and frame index), and its transfer is failed with `upload_expired`, so that the
 * client that comes back starts a new upload from zero and can say why. An upload with a request in flight, one
 * still within its lease (server/leases.ts), one whose end frame verified (it waits for, or is in, its receive)
 * never expires.
 *
 * The store decides which uploads are idle (server/upload-store/expiry.ts); the core decides here, from the
 * catalog and the leases, which of those may go; serve.ts runs the sweep through @tus/server's
 * cleanUpExpiredUploads() on a timer.
 */
import { SnapferryError } from '../core/errors.ts';
import type { Catalog } from './catalog.ts';
import type { UploadLeases } from './leases.ts';
import type { ExpiredUpload, ExpiryHooks } from './upload-store/expiry.ts';
import type { Logger } from './log.ts';
import { runEvery, type Periodic } from './periodic.ts';

/** `serve --expire-after` when neither the flag nor the config file says: a week of silence. */
export const DEFAULT_EXPIRE_AFTER_MS = 7 * 86_400_000;

export const UPLOAD_EXPIRED = 'upload_expired';

/** A request on an upload that has expired. Retrying it cannot help; a new upload (the next push) can. */
export class UploadExpired extends SnapferryError {
  constructor(message: string, details: Record<string, unknown>) {
    super(UPLOAD_EXPIRED, message, { details });
  }
}

/** "7d", "3h20m", "45s": how long, for people. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const parts: [number, string][] = [[Math.floor(s / 86_400), 'd'], [Math.floor((s % 86_400) / 3600), 'h'], [Math.floor((s % 3600) / 60), 'm']];
  if (s < 3600) parts.push([s % 60, 's']);
  // The two largest units that are not zero say enough ("7d2h", not "7d2h13m").
  return parts.filter(([n]) => n > 0).slice(0, 2).map(([n, u]) => `${n}${u}`).join('');
}

export interface ExpiryDeps {
  catalog: Catalog;
  leases: UploadLeases;
  /** How long a push keeps its upload after its last request (the lease): never expire one within it. */
  leaseMs: number;
  expireAfterMs: number;
  log: Logger;
}

/** The core's side of expiry, as the store's hooks. */
export function expiryHooks(deps: ExpiryDeps): ExpiryHooks {
  const { catalog, leases, log } = deps;
  return {
    expire(id: string, facts: ExpiredUpload) {
      const t = catalog.transfer(id);
      if (t?.state !== 'uploading' || leases.inFlight(id) || facts.idleMs < deps.leaseMs) return null;
      const idle = formatDuration(facts.idleMs);
      const message =
        `no data arrived for ${idle} (the server expires unfinished uploads after ${formatDuration(deps.expireAfterMs)}), ` +
        'so it deleted the upload and freed its spool; push again to start over';
      const details = { idleMs: facts.idleMs, expireAfterMs: deps.expireAfterMs, wireBytes: facts.wireOffset, rawBytes: facts.rawBytes, framesVerified: facts.framesVerified };
      // updateTransfer changes the record in memory before it first awaits: from here on no request leases the upload,
      // and any that reaches the store is told it expired (expiredError).
      return catalog.updateTransfer(id, { state: 'failed', error: { code: UPLOAD_EXPIRED, message, at: new Date().toISOString(), details } }).then(() => undefined);
    },
    expired(id: string, facts: ExpiredUpload) {
      const t = catalog.transfer(id);
      // Said only once the files are gone: an admin who reads "spool freed" and looks finds it so.
      log.warn(
        { transfer: id, client: t?.client, volume: t?.volume, snapshot: t?.snapshot, idle: formatDuration(facts.idleMs), freedBytes: facts.wireOffset },
        'abandoned upload expired; spool freed',
      );
    },
    expiredError(id: string) {
      const t = catalog.transfer(id);
      if (t?.state !== 'failed' || t.error?.code !== UPLOAD_EXPIRED) return null;
      return new UploadExpired(`upload ${id} expired: ${t.error.message}`, { transferId: id, ...t.error.details });
    },
  };
}

/** How often to look: a small part of the period, so an upload goes soon after its time, but at most every 10 min. */
export function sweepIntervalMs(expireAfterMs: number): number {
  return Math.min(10 * 60_000, Math.max(500, Math.round(expireAfterMs / 10)));
}

export type ExpirySweep = Periodic;

/** Runs `sweep` (tus's cleanUpExpiredUploads) every sweepIntervalMs; 0 = uploads never expire, nothing runs. */
export function startExpirySweep(sweep: () => Promise<number>, expireAfterMs: number, log: Logger): ExpirySweep {
  if (expireAfterMs <= 0) return { stop: () => Promise.resolve() };
  return runEvery(
    sweepIntervalMs(expireAfterMs),
    async () => {
      const n = await sweep();
      if (n > 0) log.info({ expired: n }, 'expired abandoned uploads');
    },
    (err) => log.error({ err }, 'could not expire abandoned uploads; trying again at the next sweep'),
  );
}
