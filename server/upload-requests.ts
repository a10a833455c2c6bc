/**
 * The tus requests on uploads as they come and go: who holds each upload's lease (server/leases.ts), which request
 * is in flight, and when a PATCH goes on with an upload that was cut, or one this process has not seen before (begun
 * before a restart): the client resumed it, one info line, as for the cut. In memory only.
 */
import type { UploadLeases } from './leases.ts';
import type { Logger } from './log.ts';

export class UploadRequests {
  /** Uploads cut since their last PATCH began (cut), and uploads that got a PATCH from this process. */
  private readonly resumable = new Set<string>();
  private readonly patched = new Set<string>();

  constructor(
    private readonly leases: UploadLeases,
    private readonly log: Logger,
  ) {}

  /**
   * A request on upload `id` begins: one still taking bytes (`uploading`) is leased to the request's push; once
   * complete, requests on it are idempotent (an empty PATCH). Pair with leave().
   */
  enter(id: string, session: string, uploading: boolean): void {
    if (uploading) this.leases.acquire(id, session);
    this.leases.enter(id);
  }

  leave(id: string): void {
    this.leases.leave(id);
  }

  inFlight(id: string): boolean {
    return this.leases.inFlight(id);
  }

  /** Whether a push holds upload `id` right now (server/leases.ts held). */
  held(id: string): boolean {
    return this.leases.held(id);
  }

  /** Takes the lease for `session` (a rewind), refusing while another request of the upload is in flight. */
  acquire(id: string, session: string): void {
    this.leases.acquire(id, session);
  }

  /** The push of `session` stopped (Ctrl-C) and lets go of upload `id` (server/leases.ts releaseBy). */
  release(id: string, session: string): boolean {
    return this.leases.releaseBy(id, session);
  }

  /** The upload's PATCH was cut: the next one resumes it. */
  cut(id: string): void {
    this.resumable.add(id);
  }

  /** A PATCH at `offset` begins; logged when it resumes the upload (`where`: the transfer's volume and snapshot). */
  patch(id: string, offset: number, where: { volume?: string | undefined; snapshot?: string | undefined }): void {
    const resumed = this.resumable.delete(id) || (!this.patched.has(id) && offset > 0);
    // A few ids per upload this process served; bounded by the transfers it saw.
    this.patched.add(id);
    if (resumed) this.log.info({ transfer: id, volume: where.volume, snapshot: where.snapshot, wireOffset: offset }, 'upload resumed');
  }
}
