/**
 * When a push says that tus-js-client retries within an upload ("interrupted: ...; resuming from the server's
 * offset"): once the server has answered the retry, not when the request failed. A request can fail because the
 * server has just deleted the upload: an abort answers the PATCH in flight and the server closes its connection, and
 * the push may see its write fail ("write EPIPE") before it reads the answer. The retry then finds the upload gone
 * (404), and the push says what that means (client/push/gone-upload.ts: stop, for an abort); a line that said it was
 * resuming just before would be false. So a retry is held until the server answers anything but "gone", or the upload
 * ends another way (then it was a retry like any); an upload that ends gone drops what was held.
 */
import type { SnapferryError } from '../../core/errors.ts';

export type RetryListener = (err: SnapferryError, attempt: number) => void;

export class HeldRetries {
  private held: { err: SnapferryError; attempt: number }[] = [];

  constructor(private readonly tell: RetryListener | undefined) {}

  /** tus-js-client retries after `err`: held until the server answers. */
  failed(err: SnapferryError, attempt: number): void {
    this.held.push({ err, attempt });
  }

  /** The server answered a request of the upload with `status`: unless the upload is gone, the retries held went on. */
  answered(status: number): void {
    if (status !== 404 && status !== 410) this.tellHeld();
  }

  /** The upload ended, with `err` (null: done). Gone, the push explains; else the retries held are told. */
  ended(err: unknown): void {
    if ((err as SnapferryError | null)?.code === 'upload_gone') this.held = [];
    else this.tellHeld();
  }

  private tellHeld(): void {
    const held = this.held;
    this.held = [];
    for (const { err, attempt } of held) this.tell?.(err, attempt);
  }
}
