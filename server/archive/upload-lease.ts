/**
 * An archive upload's lease (server/archive/lease.ts) held for one request: taken, renewed every third of the lease
 * while the request runs, released after it. The store sees only this interface, so a test can stand in a holder
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
  /** Extends the lease; throws lease_lost once it is no longer this instance's. */
  renew(): Promise<void>;
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

/** Runs `fn` under upload `id`'s lease, renewed every `renewEveryMs`, and releases the lease after. */
export async function withLease<T>(leases: UploadLeases, id: string, renewEveryMs: number, fn: (lease: HeldLease) => Promise<T>): Promise<T> {
  const lease = await leases.acquire(id);
  const renewing = keepRenewed(lease, renewEveryMs);
  try {
    return await fn(lease);
  } finally {
    await renewing.stop();
    // A release that fails leaves the lease to run out: the next request waits for it, no more.
    await lease.release().catch(() => undefined);
  }
}

/**
 * Renews `lease` every `everyMs` until stopped, one renewal at a time (two at once would race each other's ETag). A
 * renewal that fails leaves the lease to run out: the holder's next check() then ends the request as lease_lost.
 */
function keepRenewed(lease: HeldLease, everyMs: number): { stop(): Promise<void> } {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const next = (): void => {
    timer = setTimeout(() => {
      running = lease.renew().then(
        () => {
          if (!stopped) next();
        },
        () => undefined,
      );
    }, everyMs);
    timer.unref();
  };
  next();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
