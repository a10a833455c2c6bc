/**
 * tus's expiration extension, dated by activity (server/expiry.ts says why and decides which uploads may go). Every
 * HEAD and PATCH reaches get(): that is an upload's activity, kept as its spool file's mtime, so it survives a
 * restart. The sweep (expire(), run by serve.ts through @tus/server's cleanUpExpiredUploads) deletes an upload that
 * nothing touched for the period, once the core agrees.
 */
import fs from 'node:fs/promises';
import { LRUCache } from 'lru-cache';
import type { SnapferryError } from '../../core/errors.ts';
import { isTransferId } from '../layout.ts';
import type { Spool } from '../spool/spool.ts';
import { readUploadRecord } from './record.ts';
import { ForwardingStore, type UploadInfo, type UploadStore } from './store.ts';

export interface ExpiryHooks {
  /**
   * Called by the sweep for an upload idle for the period whose end frame has not verified. Returns null to keep it
   * (the core knows which are in use); otherwise marks its transfer expired at once, before the returned promise
   * settles, so that no request takes the upload up between the decision and the deletion, and resolves once that
   * is durable. The store then deletes spool, index and tus's record.
   */
  expire(id: string, facts: ExpiredUpload): Promise<void> | null;
  /** Called once an expired upload's spool, index and record are deleted. */
  expired(id: string, facts: ExpiredUpload): void;
  /** The error for a request on an upload that has expired (answered 410 Gone, as tus asks), or null. */
  expiredError(id: string): SnapferryError | null;
}

/** What an upload held when it expired, for the log and the transfer's error. */
export interface ExpiredUpload {
  /** Time since the last request on the upload, or its creation. */
  idleMs: number;
  wireOffset: number;
  rawBytes: number;
  framesVerified: number;
}

/** Uploads whose last dating this process remembers: those in progress, as a server has few at once. */
const TOUCHES_KEPT = 256;

export class ExpiringUploads extends ForwardingStore {
  private sweeping: Promise<void> = Promise.resolve();
  /**
   * The uploads whose activity this process dated lately. On a LAN a PATCH comes every 50-100 ms, and dating each
   * one set the spool's mtime while the sync of the request before it ran, which waits for that sync's inode lock (3
   * ms of each request, session 31). Dated again only after a thousandth of the period (at most a minute), it may
   * look that much longer idle to the sweep: a minute of the default 7 days.
   */
  private readonly dated: LRUCache<string, true>;

  constructor(
    inner: UploadStore,
    private readonly spool: Spool,
    private readonly hooks: ExpiryHooks,
    private readonly periodMs: number,
  ) {
    super(inner);
    this.dated = new LRUCache({ max: TOUCHES_KEPT, ttl: Math.max(1, Math.min(60_000, Math.round(periodMs / 1000))) });
  }

  override get expireAfterMs(): number {
    return this.periodMs;
  }

  /**
   * An upload goes when no request touched it for the period, its end frame has not verified, and the core agrees.
   * Not by creation date, as @tus/file-store's own sweep did: that deleted a seed that takes longer than the period
   * while it was being sent, and a complete upload that waits for its receive.
   */
  override expire(): Promise<number> {
    // One sweep at a time: a second one (the timer's and an admin's or a test's) would find the first one's uploads
    // failed but not yet deleted, skip them, and return before they are gone.
    const sweep = this.sweeping.then(() => this.sweepNow());
    this.sweeping = sweep.then(
      () => undefined,
      () => undefined,
    );
    return sweep;
  }

  private async sweepNow(): Promise<number> {
    const ttl = this.expireAfterMs;
    if (ttl <= 0) return 0;
    let removed = 0;
    let firstError: unknown = null;
    for (const id of await this.uploadIds()) {
      try {
        if (!(Date.now() - (await this.lastActivity(id)) >= ttl)) continue;
        const progress = await this.spool.progress(id);
        if (progress.complete) continue;
        // Dated again just before the decision: a request may have come while the index was read.
        const idleMs = Date.now() - (await this.lastActivity(id));
        if (!(idleMs >= ttl)) continue;
        const facts = { idleMs, wireOffset: progress.wireOffset, rawBytes: progress.rawBytes, framesVerified: progress.framesVerified };
        const marked = this.hooks.expire(id, facts);
        if (marked === null) continue;
        await marked;
        await this.spool.drop(id);
        this.hooks.expired(id, facts);
        removed++;
      } catch (err) {
        // One upload that cannot be looked at (or removed) must not keep the others from expiring.
        firstError ??= err;
      }
    }
    if (firstError !== null) throw firstError;
    return removed;
  }

  override async get(id: string): Promise<UploadInfo> {
    const expired = this.hooks.expiredError(id);
    // Answered 410 Gone (server/http-errors.ts), as tus's expiration extension asks.
    if (expired) throw expired;
    const upload = await this.inner.get(id);
    // A client asking about the upload is activity. @tus/server dates expiry from creation_date (its own 410 and
    // Upload-Expires are creation + period); handed the last activity instead, it agrees with the sweep, and a seed
    // longer than the period is not cut off.
    const now = new Date();
    if (this.periodMs > 0 && !this.dated.has(id)) {
      await fs.utimes(this.spool.layout.spoolFile(id), now, now).catch(() => undefined);
      this.dated.set(id, true);
    }
    return { ...upload, creationDate: now.toISOString() };
  }

  /** The uploads in the spool: an id with tus's record beside it. */
  private async uploadIds(): Promise<string[]> {
    const names = await fs.readdir(this.spool.layout.spool).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    const files = new Set(names);
    return names.filter((f) => isTransferId(f) && files.has(`${f}.json`));
  }

  /** When a request last touched the upload (its spool file's mtime), or its creation; NaN once it is gone. */
  private async lastActivity(id: string): Promise<number> {
    const record = await readUploadRecord(this.spool.layout, id);
    if (!record) return Number.NaN;
    const created = record.creationDate ? Date.parse(record.creationDate) : 0;
    const touched = (await fs.stat(this.spool.layout.spoolFile(id)).catch(() => null))?.mtimeMs ?? 0;
    return Math.max(created, touched);
  }
}
