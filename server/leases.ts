/**
 * Who is uploading a transfer right now. Two pushes of the same snapshot (two timers overlapping, a user running it
 * by hand) must never interleave their PATCHes: the second is refused with a retryable 409 while the first has a
 * request in flight or was seen within the lease. A client killed with kill -9 loses its lease LEASE_MS after its
 * socket closed, so a restarted push takes over on its own. A push stopped with Ctrl-C gives its lease back on the
 * way out (releaseBy), so the same command run again goes on at once instead of waiting out the lease of the push it
 * replaces. In memory only: a restarted server has no live uploads.
 */
import { SnapferryError } from '../core/errors.ts';

export const LEASE_MS = 15_000;

interface Lease {
  session: string;
  inFlight: number;
  lastSeen: number;
  /** Its push has stopped and let go: the lease ends with that push's last request, not LEASE_MS after it. */
  released?: boolean;
}

export class TransferLocked extends SnapferryError {}

export class UploadLeases {
  private readonly leases = new Map<string, Lease>();

  constructor(private readonly leaseMs = LEASE_MS) {}

  /** Takes or renews the lease for `session`; throws TransferLocked when another session holds it. */
  acquire(id: string, session: string, now = Date.now()): void {
    const held = this.leases.get(id);
    if (held && held.session !== session && (held.inFlight > 0 || now - held.lastSeen < this.leaseMs)) {
      // A released lease's last request is being taken apart (its socket closed): a second, not the whole lease.
      const wait = held.released ? 1000 : held.inFlight > 0 ? this.leaseMs : this.leaseMs - (now - held.lastSeen);
      throw new TransferLocked('transfer_locked', `another push is uploading transfer ${id} right now; this one waits and tries again`, {
        retryable: true,
        // Seconds, as every refusal that asks for a wait says it (server/http-errors.ts makes it a Retry-After).
        details: { transferId: id, retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)) },
      });
    }
    if (held && held.session === session) {
      held.lastSeen = now;
      delete held.released;
    } else this.leases.set(id, { session, inFlight: held?.session === session ? held.inFlight : 0, lastSeen: now });
  }

  enter(id: string): void {
    const l = this.leases.get(id);
    if (l) l.inFlight++;
  }

  leave(id: string, now = Date.now()): void {
    const l = this.leases.get(id);
    if (!l) return;
    l.inFlight = Math.max(0, l.inFlight - 1);
    l.lastSeen = now;
    if (l.inFlight === 0 && l.released) this.leases.delete(id);
  }

  /**
   * The push of `session` has stopped and gives its lease on `id` back: it ends now, or with that push's last request
   * still in flight. Another session's lease is left as it is (only its holder can let go). Whether it was `session`'s.
   */
  releaseBy(id: string, session: string): boolean {
    const l = this.leases.get(id);
    if (l?.session !== session) return false;
    if (l.inFlight === 0) this.leases.delete(id);
    else l.released = true;
    return true;
  }

  /**
   * Whether a push holds upload `id` right now: a request in flight, or its last one within the lease. A lease given
   * back (its push stopped) is held by nobody, even while that push's last request is taken apart.
   */
  held(id: string, now = Date.now()): boolean {
    const l = this.leases.get(id);
    if (!l || l.released) return false;
    return l.inFlight > 0 || now - l.lastSeen < this.leaseMs;
  }

  inFlight(id: string): boolean {
    return (this.leases.get(id)?.inFlight ?? 0) > 0;
  }

  release(id: string): void {
    this.leases.delete(id);
  }
}
