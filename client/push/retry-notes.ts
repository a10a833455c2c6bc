/**
 * What a push says when it tries again. Most failures are worth a line each (a cut, a stall: the reader sees the
 * line's health), but a refusal that only heals when another holder lets go (another push holds this upload) would
 * repeat itself every few seconds for as long as that push runs: it is said once, then waited out in silence.
 */
import { SnapferryError } from '../../core/errors.ts';

/**
 * Codes of refusals that last while someone else works, until someone frees the server's disk, or while the server
 * behind a proxy restarts: said once while they last (a full disk was said four times a round: by tus-js-client's own
 * retries and by the push's backoff; a proxy's 502 five times in one restart of the server).
 */
const QUIET_WAITS = new Set(['transfer_locked', 'upload_busy', 'volume_busy', 'disk_full', 'upstream_down']);

export class RetryNotes {
  private waitingFor: string | null = null;
  private readonly said = new Set<string>();

  constructor(private readonly note: (text: string) => void) {}

  /** Notes `text` for `err`, unless it is the same quiet wait as the last note. */
  retry(err: unknown, text: string): void {
    const code = err instanceof SnapferryError && QUIET_WAITS.has(err.code) ? err.code : null;
    if (code !== null && code === this.waitingFor) return;
    this.waitingFor = code;
    this.note(text);
  }

  /** Notes `text` the first time only: what each try finds again (a fact of the snapshot) is said once a push. */
  once(text: string): void {
    if (this.said.has(text)) return;
    this.said.add(text);
    this.note(text);
  }
}
