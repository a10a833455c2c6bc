/**
 * What clients may hold of the server at once, per client and in all: restore streams (server/app.ts) and verify
 * jobs (server/verify/jobs.ts) each hold memory, a process or the disks for as long as their client takes, so each is
 * capped. Past either cap a take is refused with a retryable error that says which cap and when to come back (429
 * with Retry-After at the edge, server/http-errors.ts). Counting only: what a slot stands for is the caller's.
 */
import { SnapferryError } from '../core/errors.ts';

export interface CapLimits {
  /** Slots one client may hold at once. */
  maxPerClient: number;
  /** Slots all clients together may hold at once. */
  maxTotal: number;
}

/** How a refusal reads: `client NAME already has N {held}, the limit is ...` and `the server {serverHolds(N)}, its limit`. */
export interface CapWording {
  code: string;
  /** What a client holds, e.g. "restore streams from the server". */
  held: string;
  /** What the server does at its cap, e.g. (n) => `sends ${n} restore streams`. */
  serverHolds: (n: number) => string;
}

/** What a refused client is told to wait: a slot is given back when a stream ends or a digest is done, seconds to minutes. */
export const CAP_RETRY_AFTER_SECONDS = 15;

export class ClientCaps {
  private readonly held = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly limits: Readonly<CapLimits>,
    private readonly wording: CapWording,
  ) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${wording.code} limit ${name} must be a whole number >= 1, not ${value}`);
    }
  }

  /** Takes a slot for `client`, or throws the refusal; the function returned gives it back, once however often called. */
  take(client: string): () => void {
    const ofClient = this.ofClient(client);
    const { maxPerClient, maxTotal } = this.limits;
    if (ofClient >= maxPerClient) {
      throw new SnapferryError(this.wording.code, `client ${client} already has ${ofClient} ${this.wording.held}, the limit is ${maxPerClient} (429): let them finish, then try again`, {
        retryable: true, details: { client, maxPerClient, retryAfterSeconds: CAP_RETRY_AFTER_SECONDS },
      });
    }
    if (this.total >= maxTotal) {
      throw new SnapferryError(this.wording.code, `the server ${this.wording.serverHolds(this.total)}, its limit (429); try again later`, {
        retryable: true, details: { maxTotal, retryAfterSeconds: CAP_RETRY_AFTER_SECONDS },
      });
    }
    this.held.set(client, ofClient + 1);
    this.total++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.total--;
      const left = this.ofClient(client) - 1;
      if (left > 0) this.held.set(client, left);
      else this.held.delete(client);
    };
  }

  /** Slots `client` holds. */
  ofClient(client: string): number {
    return this.held.get(client) ?? 0;
  }

  /** Slots held in all. */
  inAll(): number {
    return this.total;
  }
}
