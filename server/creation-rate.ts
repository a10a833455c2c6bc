/**
 * How fast one client may create uploads (issue 17): a token bucket per client, `burst` tokens, refilled at
 * `perMinute`. Each creation records a transfer in the catalog, which is written whole on every change, so
 * create-and-abort in a loop (1,500 in 33 s) was work and catalog growth without end; no push comes near the rate.
 * Pure but for the injected clock; a restart refills every bucket, which is no more than one burst.
 */
export class CreationRate {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly limits: { creationsPerMinute: number; creationBurst: number },
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one creation from `client`'s bucket: 0 when allowed, else the milliseconds until one will be (nothing taken). */
  take(client: string): number {
    const { creationsPerMinute: perMinute, creationBurst: burst } = this.limits;
    const now = this.now();
    const b = this.buckets.get(client) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) * perMinute) / 60_000);
    b.at = now;
    this.buckets.set(client, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 60_000) / perMinute);
  }
}
