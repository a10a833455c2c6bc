/**
 * One holder at a time per upload, for the store's work on its spool and index. @tus/server's own lock is not
 * enough: its pipeline() settles as soon as the request stream fails (a cut), while the store's write() may still be
 * between a frame's bytes and its index record; the next request's repair() would then cut that frame off the spool
 * just before its record lands, and the upload's offset would later go back (seen on a slow link with cuts).
 */
export class UploadMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /**
   * Runs `fn` once every earlier holder of `id` has finished, and keeps later ones waiting until it has, or until it
   * calls `release` (its work on the files is done, and what is left of it, a sync, needs no lock).
   */
  async run<T>(id: string, fn: (release: () => void) => Promise<T>): Promise<T> {
    const before = this.tails.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => mine);
    this.tails.set(id, tail);
    const leave = () => {
      release();
      // The last holder leaves no entry behind: ids are not kept for ever.
      if (this.tails.get(id) === tail) this.tails.delete(id);
    };
    await before;
    try {
      return await fn(leave);
    } finally {
      leave();
    }
  }
}
