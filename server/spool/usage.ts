/**
 * What each client holds in the spool folder, which its quota bounds (issue 17): every file of every upload of the
 * client that is on disk (unfinished, waiting for its receive, or kept after its transfer failed), as it really is.
 * Never a declared length: that binds nothing until the end frame verified (server/spool/append.ts), and four
 * uploads that declared 1000 bytes each held 9 MB under a 10 MB quota while they were counted at it.
 *
 * The disk is measured when a write starts, and again whenever the measure may be stale; in between, the uploads
 * being written are counted at what has reached the store so far, kept here in memory, so that two PATCHes of one
 * client at once see each other's bytes as they arrive rather than only what was on disk when each began.
 */

/** One upload's files in the spool folder: its framed stream (ID) and the rest (tus's record, the frame index). */
export interface SpoolFiles {
  id: string;
  streamBytes: number;
  otherBytes: number;
}

interface Measure {
  generation: number;
  spools: readonly SpoolFiles[];
}

/** A write in progress, as the quota sees it. */
export interface WriteUsage {
  /** The upload has reached `bytes` (its stream, and what its index grew by in this write). */
  reach(bytes: number): void;
  /** The client's total now, or null when the measure it rests on may be stale (then `measure()`). */
  total(): number | null;
  /** The client's total, measured again from the disk. */
  measure(): Promise<number>;
  /**
   * What this upload holds itself, as the last measure counts it (its record and frame index as measured, its stream
   * at what the write has reached): the client's total less this is what its other uploads hold.
   */
  held(): number;
  /** What each of the client's uploads holds, as the last measure counts it (this one's included). */
  each(): Map<string, number>;
  /** The write is over: from now on the disk says what the upload holds. */
  end(): void;
}

export class SpoolUsage {
  /** Uploads being written, by client: the bytes each has reached. */
  private readonly writing = new Map<string, Map<string, number>>();
  /** Bumped when a client's bytes may have moved out of what a measure saw (a write ended). */
  private readonly generations = new Map<string, number>();

  constructor(private readonly measureDisk: (client: string) => Promise<SpoolFiles[]>) {}

  /** The client's bytes in the spool now, its uploads being written counted at what has arrived. */
  async total(client: string): Promise<number> {
    return this.sum(client, await this.take(client));
  }

  /** Something of the client's changed on disk that a measure taken before would miss (a write ended). */
  changed(client: string): void {
    this.generations.set(client, this.generation(client) + 1);
  }

  /** Starts counting a write of upload `id`, which holds `bytes` in its stream when it starts. */
  async begin(client: string, id: string, bytes: number): Promise<WriteUsage> {
    const mine = this.writing.get(client) ?? new Map<string, number>();
    this.writing.set(client, mine);
    // Two writes of one upload never run at once (tus locks the upload for each PATCH); if they did, the later counts.
    mine.set(id, bytes);
    let last: Measure;
    try {
      last = await this.take(client);
    } catch (err) {
      // No write follows: its count must not stay behind and hold the client's quota.
      this.stopCounting(client, id);
      throw err;
    }
    return {
      reach: (n) => void mine.set(id, n),
      total: () => (last.generation === this.generation(client) ? this.sum(client, last) : null),
      measure: async () => {
        last = await this.take(client);
        return this.sum(client, last);
      },
      held: () => this.heldBy(client, id, last),
      each: () => this.eachOf(client, last),
      end: () => {
        this.stopCounting(client, id);
        this.changed(client);
      },
    };
  }

  private stopCounting(client: string, id: string): void {
    const mine = this.writing.get(client);
    mine?.delete(id);
    if (mine?.size === 0) this.writing.delete(client);
  }

  private generation(client: string): number {
    return this.generations.get(client) ?? 0;
  }

  private async take(client: string): Promise<Measure> {
    // The generation first: a change during the measure leaves it stale, never wrongly fresh.
    const generation = this.generation(client);
    return { generation, spools: await this.measureDisk(client) };
  }

  /** What each of the client's uploads holds now, measured from the disk, its writes counted at what arrived. */
  async each(client: string): Promise<Map<string, number>> {
    return this.eachOf(client, await this.take(client));
  }

  /** Pure over the measure: the sum of eachOf. */
  private sum(client: string, m: Measure): number {
    let total = 0;
    for (const n of this.eachOf(client, m).values()) total += n;
    return total;
  }

  /** Pure over the measure: each upload's files as measured, its stream at what a write has reached instead. */
  private eachOf(client: string, m: Measure): Map<string, number> {
    const out = new Map<string, number>();
    for (const s of m.spools) out.set(s.id, this.heldBy(client, s.id, m));
    for (const [id, n] of this.writing.get(client) ?? []) if (!out.has(id)) out.set(id, n);
    return out;
  }

  /** Upload `id`'s part of sum(). */
  private heldBy(client: string, id: string, m: Measure): number {
    const s = m.spools.find((x) => x.id === id);
    const live = this.writing.get(client)?.get(id) ?? 0;
    return s === undefined ? live : s.otherBytes + Math.max(s.streamBytes, live);
  }
}
