/**
 * How fast one client may create uploads (issue 17): a token bucket per client, `burst` tokens, refilled at
 * `perMinute`. Each creation records a transfer in the catalog, which is written whole on every change, so
 * create-and-abort in a loop (1,500 in 33 s) was work and catalog growth without end; no push comes near the rate.
 * Pure but for the injected clock; a restart refills every bucket, which is no more than one burst. An archive keeps
 * each client's bucket in the bucket instead (server/archive/client-uploads.ts), with the same arithmetic
 * (takeCreation), so that instances behind one proxy share it.
 */
export interface CreationLimits {
  creationsPerMinute: number;
  creationBurst: number;
}

/** One client's bucket: its tokens at time `at` (ms on the clock the caller uses). */
export interface CreationBucket {
  tokens: number;
  at: number;
}

/**
 * Takes one creation from `bucket` (null: a full one) at `now`: the bucket after, and 0 when allowed, else the
 * milliseconds until one will be (and nothing taken). A clock that went back refills nothing.
 */
export function takeCreation(bucket: CreationBucket | null, now: number, limits: CreationLimits): { bucket: CreationBucket; waitMs: number } {
  const { creationsPerMinute: perMinute, creationBurst: burst } = limits;
  const b = bucket ?? { tokens: burst, at: now };
  const tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) * perMinute) / 60_000);
  const at = Math.max(now, b.at);
  if (tokens >= 1) return { bucket: { tokens: tokens - 1, at }, waitMs: 0 };
  return { bucket: { tokens, at }, waitMs: Math.ceil(((1 - tokens) * 60_000) / perMinute) };
}

export class CreationRate {
  private readonly buckets = new Map<string, CreationBucket>();

  constructor(
    private readonly limits: CreationLimits,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one creation from `client`'s bucket: 0 when allowed, else the milliseconds until one will be (nothing taken). */
  take(client: string): number {
    const { bucket, waitMs } = takeCreation(this.buckets.get(client) ?? null, this.now(), this.limits);
    this.buckets.set(client, bucket);
    return waitMs;
  }
}
