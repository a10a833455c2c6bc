/**
 * Who is uploading a transfer right now. Two pushes of the same snapshot (two timers overlapping, a user running it
 * by hand) must never interleave their PATCHes: the second is refused with a retryable 409 while the first has a
 * request in flight or was seen within the lease. A client killed with kill -9 loses its lease LEASE_MS after its
 * socket closed, so a restarted push takes over on its own. In memory only: a restarted server has no live uploads.
 */
import { SnapferryError } from '../core/errors.ts';

export const LEASE_MS = 15_000;

interface Lease {
  session: string;
  inFlight: number;
  lastSeen: number;
}

export class TransferLocked extends SnapferryError {}

export class UploadLeases {
  private readonly leases = new Map<string, Lease>();

  constructor(private readonly leaseMs = LEASE_MS) {}

  /** Takes or renews the lease for `session`; throws TransferLocked when another session holds it. */
  acquire(id: string, session: string, now = Date.now()): void {
    const held = this.leases.get(id);
    if (held && held.session !== session && (held.inFlight > 0 || now - held.lastSeen < this.leaseMs)) {
      const wait = held.inFlight > 0 ? this.leaseMs : this.leaseMs - (now - held.lastSeen);
      throw new TransferLocked('transfer_locked', `another push is uploading transfer ${id} right now; this one waits and tries again`, {
        retryable: true,
        // Seconds, as every refusal that asks for a wait says it (server/http-errors.ts makes it a Retry-After).
        details: { transferId: id, retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)) },
      });
    }
    if (held && held.session === session) held.lastSeen = now;
    else this.leases.set(id, { session, inFlight: held?.session === session ? held.inFlight : 0, lastSeen: now });
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
  }

  inFlight(id: string): boolean {
    return (this.leases.get(id)?.inFlight ?? 0) > 0;
  }

  release(id: string): void {
    this.leases.delete(id);
  }
}
