/**
 * An archive upload's lease (server/archive/lease.ts) held for one request: taken, kept alive (renewed every third of
 * the lease) while the request runs, released after it. The store sees only this interface, so a test can stand in a holder
 * that paused past its lease.
 */
import { acquireLease, type LeaseOptions } from './lease.ts';
import type { ObjectStore } from './object-store.ts';

/** The lease of one upload as this store uses it (server/archive/lease.ts's ArchiveLease). */
export interface HeldLease {
  /** Rises with every new holder: what state.json is fenced with. */
  readonly generation: number;
  /** Throws lease_lost unless the lease is still this holder's by its own clock (before each write). */
  check(): void;
  /** Renews the lease every third of it until the returned stop is called (ArchiveLease.keepAlive). */
  keepAlive(): () => void;
  release(): Promise<void>;
}

export interface UploadLeases {
  /** Takes upload `id`'s lease; throws a retryable transfer_locked while another live holder has it. */
  acquire(id: string): Promise<HeldLease>;
}

/** The leases of the bucket (server/archive/lease.ts), taken for HOLDER: a name unique to this server instance. */
export function bucketLeases(objects: ObjectStore, holder: string, options: LeaseOptions = {}): UploadLeases {
  return { acquire: (id) => acquireLease(objects, id, holder, options) };
}

/** Runs `fn` under upload `id`'s lease, kept alive while it runs, and releases the lease after. */
export async function withLease<T>(leases: UploadLeases, id: string, fn: (lease: HeldLease) => Promise<T>): Promise<T> {
  const lease = await leases.acquire(id);
  // A renewal that meets a takeover marks the lease gone: the holder's next check() ends the request as lease_lost.
  const stop = lease.keepAlive();
  try {
    return await fn(lease);
  } finally {
    stop();
    // A release that fails leaves the lease to run out: the next request waits for it, no more.
    await lease.release().catch(() => undefined);
  }
}
