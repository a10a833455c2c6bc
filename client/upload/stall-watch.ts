/**
 * Tells a slow line from a silent one. The client's own writes are a poor gauge: a body goes into socket buffers
 * that hold many seconds of a slow line (megabytes, with TCP autotuning), so the last write can be long past while
 * the line still carries it. Once they have been quiet for half the stall timeout, the server is asked how many
 * bytes of the upload have arrived; once quiet for all of it, asked again: bytes that arrived meanwhile mean the line
 * moves. No answer within the other half, or nothing arrived, is a stall. Without a probe, quiet writes are a stall.
 */
export class StallWatch {
  #baseline: number | null = null;
  /** When a probe last found bytes arriving: the line moved then, whatever the client's writes did. */
  #aliveAt = 0;
  #probing = false;
  #over = false;

  constructor(
    private readonly stallMs: number,
    private readonly probe: () => ((timeoutMs: number) => Promise<number>) | undefined,
    private readonly stalled: () => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Called often with the time the client last saw its own bytes move or an answer come. */
  check(lastActivity: number): void {
    if (this.#over || this.#probing) return;
    const quiet = this.now() - Math.max(lastActivity, this.#aliveAt);
    if (quiet < this.stallMs / 2) {
      if (lastActivity > this.#aliveAt) this.#baseline = null;
      return;
    }
    const probe = this.probe();
    if (probe === undefined) {
      if (quiet >= this.stallMs) this.#stall();
      return;
    }
    if (this.#baseline !== null && quiet < this.stallMs) return;
    this.#probing = true;
    probe(this.stallMs / 2).then(
      (arrived) => {
        this.#probing = false;
        if (this.#baseline !== null && arrived <= this.#baseline) return this.#stall();
        if (this.#baseline !== null) this.#aliveAt = this.now();
        this.#baseline = arrived;
      },
      () => {
        this.#probing = false;
        this.#stall();
      },
    );
  }

  #stall(): void {
    if (this.#over) return;
    this.#over = true;
    this.stalled();
  }
}
