/**
 * When a push says that tus-js-client retries within an upload ("interrupted: ...; resuming from the server's
 * offset"): once the server has answered the retry, not when the request failed. A request can fail because the
 * server has just deleted the upload: an abort answers the PATCH in flight and the server closes its connection, and
 * the push may see its write fail ("write EPIPE") before it reads the answer. The retry then finds the upload gone
 * (404), and the push says what that means (client/push/gone-upload.ts: stop, for an abort); a line that said it was
 * resuming just before would be false. So a retry is held until the server answers anything but "gone", or the upload
 * ends another way (then it was a retry like any); an upload that ends gone drops what was held. Held no longer than
 * HOLD_MS: the abort's race is a matter of milliseconds, and a server that does not answer (down, or a silent line
 * until the stall timeout) must not leave the user without a word of why nothing moves.
 */
import type { SnapferryError } from '../../core/errors.ts';

export const HOLD_MS = 5000;

export type RetryListener = (err: SnapferryError, attempt: number) => void;

export class HeldRetries {
  private held: { err: SnapferryError; attempt: number }[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly tell: RetryListener | undefined,
    private readonly holdMs = HOLD_MS,
  ) {}

  /** tus-js-client retries after `err`: held until the server answers, or for holdMs. */
  failed(err: SnapferryError, attempt: number): void {
    this.held.push({ err, attempt });
    if (this.timer === null) {
      this.timer = setTimeout(() => this.tellHeld(), this.holdMs);
      this.timer.unref();
    }
  }

  /** The server answered a request of the upload with `status`: unless the upload is gone, the retries held went on. */
  answered(status: number): void {
    if (status !== 404 && status !== 410) this.tellHeld();
  }

  /** The upload ended, with `err` (null: done). Gone, the push explains; else the retries held are told. */
  ended(err: unknown): void {
    if ((err as SnapferryError | null)?.code !== 'upload_gone') return this.tellHeld();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.held = [];
  }

  private tellHeld(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const held = this.held;
    this.held = [];
    for (const { err, attempt } of held) this.tell?.(err, attempt);
  }
}
