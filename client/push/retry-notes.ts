/**
 * What a push says when it tries again. Most failures are worth a line each (a cut, a stall: the reader sees the
 * line's health), but a refusal that only heals when another holder lets go (another push holds this upload) would
 * repeat itself every few seconds for as long as that push runs: it is said once, then waited out in silence.
 */
import { SnapferryError } from '../../core/errors.ts';

/**
 * Refusals that last while someone else works, until someone frees the server's disk, or while the server behind a
 * proxy restarts, by the cause each waits on: said once while that cause lasts (a full disk was said four times a
 * round: by tus-js-client's own retries and by the push's backoff; a proxy's 502 five times in one restart of the
 * server). Another holder of the upload answers transfer_locked, or a bare 409 (a proxy's, an older server's, a PATCH
 * that met the holder's offset): one wait, said once.
 */
const QUIET_WAITS = new Map([
  ['transfer_locked', 'upload held'],
  ['upload_busy', 'upload held'],
  ['volume_busy', 'volume held'],
  ['disk_full', 'disk full'],
  ['upstream_down', 'upstream down'],
]);

export class RetryNotes {
  private waitingFor: string | null = null;
  private readonly said = new Set<string>();

  constructor(private readonly note: (text: string) => void) {}

  /** Notes `text` for `err`, unless it waits on the same cause as the last note. */
  retry(err: unknown, text: string): void {
    const cause = err instanceof SnapferryError ? (QUIET_WAITS.get(err.code) ?? null) : null;
    if (cause !== null && cause === this.waitingFor) return;
    this.waitingFor = cause;
    this.note(text);
  }

  /** Notes `text` the first time only: what each try finds again (a fact of the snapshot) is said once a push. */
  once(text: string): void {
    if (this.said.has(text)) return;
    this.said.add(text);
    this.note(text);
  }
}
