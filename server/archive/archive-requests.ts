/**
 * The tus requests on archive uploads as they come and go, as server/upload-requests.ts is a btrfs server's. Across
 * instances the bucket's lease (segment-uploads.ts) keeps two writers apart; within this one, the push sessions here
 * refuse another push's request while one runs (transfer_locked, Retry-After), and admit the same push at once (its
 * request after a cut, while the cut one is still being taken apart). In memory only.
 */
import { UploadLeases } from '../leases.ts';
import type { ObjectStore } from './object-store.ts';
import { assertNotLeasedByOther } from './lease.ts';

export class ArchiveRequests {
  /**
   * Which push (session) has a request on each upload in this instance now. The bucket's lease is this instance's,
   * so it admits any request that reaches here; this keeps a second push of one upload out while the first one's
   * request runs, with the transfer_locked another instance would answer. Only while a request runs: between
   * requests the bucket's lease is released and any instance admits either push.
   */
  private readonly sessions: UploadLeases;

  constructor(
    private readonly objects: ObjectStore,
    /** This instance's name in the bucket's leases. */
    private readonly holder: string,
    leaseMs: number,
  ) {
    this.sessions = new UploadLeases(leaseMs);
  }

  /** A request on upload `id` begins, for push `session`; pair with leave(). */
  enter(id: string, session: string): void {
    this.sessions.acquire(id, session);
    this.sessions.enter(id);
  }

  leave(id: string): void {
    this.sessions.leave(id);
    // Only a running request holds an upload here: nothing is kept of one that ended (the bucket's lease is free too).
    if (!this.sessions.inFlight(id)) this.sessions.release(id);
  }

  /**
   * Another instance's live lease refuses a PATCH here, before tus compares its offset: a second push learns
   * transfer_locked with when to come back, as from a btrfs server, not an offset_mismatch that sends it on to race.
   */
  patch(id: string): Promise<void> {
    return assertNotLeasedByOther(this.objects, id, this.holder);
  }
}
