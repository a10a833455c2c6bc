/**
 * Which instance may write an archive upload now, across instances that share only the bucket: the object
 * `uploads/ID/lease.json` = { holder, generation, expiresAt, released? }, changed only by compare-and-swap. It is
 * server/leases.ts's contract (one writer per upload; another gets a retryable 409 `transfer_locked` with when to come
 * back; a writer killed with -9 loses it after the lease) made to hold between processes.
 *
 * Time is the S3 server's, never an instance's clock: `expiresAt` is the `Date` of the store's answer just before the
 * swap, plus one second (a Date has whole seconds, so the server's time was anywhere in the second it names), plus
 * the lease. Another instance takes over only when a Date it got is at or past `expiresAt`, which is then at least
 * the lease after the read the holder timed it from. The holder counts its own deadline on its monotonic clock from
 * before that read, so it believes it holds the lease for no longer than the bucket grants it.
 *
 * Time alone cannot stop a holder that was paused between its check and its write; fencing does
 * (server/archive/fenced-object.ts): every new generation stamps the upload's mutable objects first, and the old
 * holder's swaps from the ETags it knew then fail as `lease_lost`.
 */
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { LeaseLost, ValidationError } from '../../core/errors.ts';
import { TransferLocked } from '../leases.ts';
import type { ObjectStore, WriteResult } from './object-store.ts';
import { encodeJson, parseJson } from './json-object.ts';

/** The lease; a holder renews it every third of it, so two renewals can fail before it is lost. */
export const ARCHIVE_LEASE_MS = 30_000;
/** An HTTP Date names a whole second; the server's time was somewhere in it. */
const DATE_RESOLUTION_MS = 1_000;
/** Lost races in a row (other instances taking or renewing at the same moment) before acquire gives up. */
const MAX_ATTEMPTS = 8;

const LeaseBody = z.object({
  holder: z.string().min(1),
  generation: z.number().int().nonnegative(),
  expiresAt: z.iso.datetime(),
  released: z.boolean().optional(),
});
type LeaseBody = z.infer<typeof LeaseBody>;

export interface LeaseOptions {
  leaseMs?: number;
  /** A monotonic clock in ms for the holder's own deadline (performance.now by default). */
  now?: () => number;
}

export const leaseKey = (uploadId: string): string => `uploads/${checkId(uploadId)}/lease.json`;

/** An upload's id becomes a folder name in the bucket: one path part of plain characters, nothing else. */
function checkId(uploadId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(uploadId)) throw new ValidationError(`upload id ${JSON.stringify(uploadId)} is not a valid archive upload id`);
  return uploadId;
}

/**
 * Takes the lease on UPLOADID for HOLDER (an id unique to this instance and request), or throws TransferLocked
 * (`transfer_locked`, retryable, with retryAfterSeconds) while another holder's lease runs. A lease this holder
 * already has is taken again under a new generation, which fences off its own older request.
 */
export async function acquireLease(store: ObjectStore, uploadId: string, holder: string, options: LeaseOptions = {}): Promise<ArchiveLease> {
  const leaseMs = options.leaseMs ?? ARCHIVE_LEASE_MS;
  const now = options.now ?? performance.now.bind(performance);
  if (holder === '') throw new ValidationError('a lease holder needs a name');
  const key = leaseKey(uploadId);
  for (let attempt = 1; ; attempt++) {
    const sent = now();
    const got = await store.get(key);
    let etag: string;
    let from: LeaseBody;
    let date: Date;
    if (got === null) {
      // Created released, then taken by the swap below like any released lease: the new lease's expiry then comes
      // from the Date of this create's answer, as every expiry comes from a Date the store gave.
      const created = await store.putIfAbsent(key, encodeJson(releasedBody({ holder, generation: 0 })));
      if (created === null) continue; // another instance created it first: read what it wrote
      ({ etag, date } = created);
      from = releasedBody({ holder, generation: 0 });
    } else {
      from = parseJson(key, got.body, LeaseBody);
      ({ etag, date } = got);
      const locked = lockedFor(uploadId, from, date, holder);
      if (locked) throw locked;
    }
    const body: LeaseBody = { holder, generation: from.generation + 1, expiresAt: expiry(date, leaseMs) };
    const taken = await store.swap(key, encodeJson(body), etag);
    if (taken) return new ArchiveLease(store, uploadId, holder, body.generation, taken, sent + leaseMs, leaseMs, now);
    if (attempt >= MAX_ATTEMPTS) {
      throw new TransferLocked('transfer_locked', `upload ${uploadId}'s lease changed under ${attempt} tries in a row; this request tries again`, {
        retryable: true, details: { transferId: uploadId, retryAfterSeconds: 1 },
      });
    }
  }
}

/**
 * Throws transfer_locked while another holder's lease on UPLOADID runs, as acquireLease would, without taking it: what
 * a request learns before anything else is looked at (its offset above all), as a btrfs server's second push learns
 * it (server/leases.ts). Only an answer of the moment: the lease taken by the write itself is what keeps writers apart.
 */
export async function assertNotLeasedByOther(store: ObjectStore, uploadId: string, holder: string): Promise<void> {
  const key = leaseKey(uploadId);
  const got = await store.get(key);
  if (got === null) return;
  const locked = lockedFor(uploadId, parseJson(key, got.body, LeaseBody), got.date, holder);
  if (locked) throw locked;
}

/** The refusal while FROM is another holder's live lease at the store's time DATE; null when HOLDER may take it. */
function lockedFor(uploadId: string, from: LeaseBody, date: Date, holder: string): TransferLocked | null {
  const expiresAt = Date.parse(from.expiresAt);
  if (from.released || from.holder === holder || date.getTime() >= expiresAt) return null;
  const retryAfterSeconds = Math.max(1, Math.ceil((expiresAt - date.getTime()) / 1000));
  return new TransferLocked('transfer_locked', `another server instance is writing upload ${uploadId} right now; this request waits ${retryAfterSeconds} s and tries again`, {
    retryable: true,
    details: { transferId: uploadId, retryAfterSeconds },
  });
}

function expiry(date: Date, leaseMs: number): string {
  return new Date(date.getTime() + DATE_RESOLUTION_MS + leaseMs).toISOString();
}

function releasedBody(lease: { holder: string; generation: number }): LeaseBody {
  return { holder: lease.holder, generation: lease.generation, expiresAt: new Date(0).toISOString(), released: true };
}

/** A lease this instance holds: renew it, release it, and check it before a write. */
export class ArchiveLease {
  /** Why the lease is no longer this holder's (released, taken over), once that is known. */
  private gone: string | null = null;

  constructor(
    private readonly store: ObjectStore,
    readonly uploadId: string,
    readonly holder: string,
    readonly generation: number,
    private written: WriteResult,
    /** On `now`'s clock: after this the holder no longer assumes the lease is its. */
    private deadline: number,
    private readonly leaseMs: number,
    private readonly now: () => number,
  ) {}

  /** How long this holder may still count on the lease (ms, on its own clock); 0 once it may not. */
  remainingMs(): number {
    return this.gone !== null ? 0 : Math.max(0, this.deadline - this.now());
  }

  /** Throws LeaseLost unless the lease is still this holder's by its own clock (a check before each write). */
  check(): void {
    if (this.remainingMs() === 0) throw this.lost(this.gone ?? 'it ran out before it was renewed');
  }

  /** Extends the lease by a full lease from now; throws LeaseLost when another holder has it now. */
  async renew(): Promise<void> {
    // Not this.check(): a renewal late by our clock is still safe when nobody took the lease, and the swap tells.
    if (this.gone !== null) throw this.lost(this.gone);
    const key = leaseKey(this.uploadId);
    const sent = this.now();
    const got = await this.store.get(key);
    // The ETag of our own last write: anything else there (a new generation, a release) means it is not ours.
    if (!got || got.etag !== this.written.etag) throw this.takenOver();
    const body: LeaseBody = { holder: this.holder, generation: this.generation, expiresAt: expiry(got.date, this.leaseMs) };
    const swapped = await this.store.swap(key, encodeJson(body), this.written.etag);
    if (!swapped) throw this.takenOver();
    this.written = swapped;
    this.deadline = sent + this.leaseMs;
  }

  /** Gives the lease up at once, so the next request need not wait for it to expire. Quiet when it was lost. */
  async release(): Promise<void> {
    if (this.gone !== null) return;
    this.gone = 'it was released';
    const key = leaseKey(this.uploadId);
    // A released lease stays in the bucket with its generation (a mutable object is never deleted: DELETE cannot
    // be conditional on RGW, so a delete could remove a lease another instance took a moment ago).
    await this.store.swap(key, encodeJson(releasedBody(this)), this.written.etag);
  }

  /**
   * Renews the lease every third of it until the returned stop() is called or the lease is lost or released. A
   * renewal that fails on the store (down for a moment) is tried at the next tick; the holder's own deadline runs
   * out meanwhile if the store stays down, so its writes stop in time. ON_LOST hears of a takeover.
   */
  keepAlive(onLost?: (err: LeaseLost) => void): () => void {
    let renewing = false;
    const timer = setInterval(() => {
      if (this.gone !== null) return clearInterval(timer);
      if (renewing) return;
      renewing = true;
      this.renew()
        .catch((err: unknown) => {
          if (!(err instanceof LeaseLost)) return;
          clearInterval(timer);
          onLost?.(err);
        })
        .finally(() => (renewing = false));
    }, this.leaseMs / 3);
    timer.unref();
    return () => clearInterval(timer);
  }

  private takenOver(): LeaseLost {
    this.gone = 'another instance took it over';
    return this.lost(this.gone);
  }

  lost(why: string): LeaseLost {
    return new LeaseLost(`this server instance no longer holds upload ${this.uploadId} (${why}); nothing more was written, and the client's retry goes on where the upload stands`, {
      details: { transferId: this.uploadId, generation: this.generation },
    });
  }
}
