/**
 * One framed stream as one tus upload (tus-js-client), as a promise. Retries here only ride out short hiccups
 * within one upload; which failures may be retried at all is decided by `retryable` (a frame the server refused, a
 * stream that does not match its metadata, or a bad send stream never heal by sending again).
 */
import { Upload, type DetailedError } from 'tus-js-client';
import { SnapferryError } from '../../core/errors.ts';
import { ACK_HEADER, ACK_SYNCED_OFFSET_HEADER, ACK_WRITTEN, ERROR_CODE_HEADER, ErrorBody, UPLOADS_PATH } from '../../core/protocol.ts';
import type { FramedUploadSource } from './source.ts';
import type { UploadRateLimit } from './rate-limit.ts';
import { bodyPieceFor, patchBody } from './patch-body.ts';
import { answerWithoutErrorBody } from '../http/answer.ts';
import { onServer } from '../http/server-path.ts';
import { DEFAULT_STALL_MS, tlsErrorFrom, type Transport } from '../http/transport.ts';
import type { LinkMeter } from './link-meter.ts';
import { StallWatch } from './stall-watch.ts';
import { retryAfterDetails, retryAfterOf } from '../http/retry-after.ts';
import { HeldRetries, type RetryListener } from './held-retries.ts';

export interface TusUploadOptions {
  server: string;
  /** Resume this upload instead of creating one. tus-js-client then gets no endpoint, so that a 404/410 on resume
   * fails instead of silently starting a new upload at offset 0 while the stream has moved on (its issue 580). */
  uploadUrl?: string | null;
  metadata: Record<string, string>;
  source: FramedUploadSource;
  /** Bytes per PATCH at most (whole frames). */
  chunkSize: number;
  headers?: Record<string, string>;
  /** Trust and proxy, the same as the JSON API's (ServerApi.transport); default: tus-js-client's own stack. */
  transport?: Transport;
  retryDelays?: number[];
  signal?: AbortSignal;
  onUrl?: (url: string) => void;
  onProgress?: (sent: number) => void;
  /** Caps the upload's rate (--limit-rate); shared by every upload of a push. */
  rateLimit?: UploadRateLimit;
  /**
   * Told when tus-js-client retried within this upload (it asks the server's offset and goes on): once the server
   * answered the retry, never when it found the upload gone (client/upload/held-retries.ts).
   */
  onRetry?: RetryListener;
  /** Told how fast bytes go out, and how long the upload waited for frames (for --compress auto). */
  linkMeter?: LinkMeter;
  /** Give up on the upload (retryably) when no byte moved and no response came for this long (default DEFAULT_STALL_MS). */
  stallMs?: number;
  /**
   * Bytes of this upload that have reached the server so far (Transfer.wireArrived), asked on a connection of its
   * own within the given time. Without it, writes that went quiet for stallMs end the upload; with it, only when
   * the server saw no byte arrive meanwhile either.
   */
  probeArrived?: (timeoutMs: number) => Promise<number>;
  /**
   * The upload's verified end on the server (Transfer.wireOffset), asked when the server's offset is past every byte
   * this upload sent: another push of the snapshot sent frames meanwhile (see movedOn).
   */
  verifiedOffset?: () => Promise<number>;
}


export class UploadError extends SnapferryError {}

/** What a refused HEAD (no body, only its code) means to the person watching the push. */
const HEAD_REFUSALS: Record<string, string> = {
  transfer_locked: 'another push holds this upload (one still running, or one killed or cut off less than 15 s ago); waiting for it to let go',
};

/** Turns a tus-js-client error into ours, keeping the server's JSON error when it sent one. `server`: --server. */
export function uploadErrorFrom(err: Error | DetailedError, server?: string): SnapferryError {
  if (err instanceof SnapferryError) return err;
  const detailed = err as DetailedError;
  const res = detailed.originalResponse;
  if (res) {
    const status = res.getStatus();
    const method = detailed.originalRequest?.getMethod();
    if ((status === 404 || status === 410) && (method === 'HEAD' || method === 'PATCH')) {
      // tus: the upload is gone (aborted, expired, or the server lost it), whatever code the server gave it. Retryable,
      // but whether a new upload starts over is the push's to decide from the transfer's state on the server: one that
      // someone aborted stops the push (client/push/gone-upload.ts).
      const code = res.getHeader(ERROR_CODE_HEADER);
      return new UploadError('upload_gone', `the server no longer has this upload (${status}${code ? ` ${code}` : ''})`, {
        retryable: true, details: { status, ...(code ? { serverCode: code } : {}) },
      });
    }
    let parsed: ErrorBody | undefined;
    try {
      parsed = ErrorBody.parse(JSON.parse(res.getBody()));
    } catch {
      parsed = undefined;
    }
    // 429 (RFC 6585) heals by waiting too: a proxy's per-address cap answers it without our body.
    const retryable = status >= 500 || status === 409 || status === 423 || status === 429;
    const after = retryAfterDetails(res.getHeader('Retry-After'), parsed?.error.details?.retryAfterSeconds, Date.now());
    if (parsed) {
      return new UploadError(parsed.error.code, parsed.error.message, {
        // The server's own word decides: a 409 like snapshot_uuid_taken never heals by sending again.
        retryable: parsed.error.retryable,
        details: { status, ...parsed.error.details, ...after },
      });
    }
    const code = res.getHeader(ERROR_CODE_HEADER);
    if (code) {
      // A HEAD's answer has no body: the code is all the server could say.
      return new UploadError(code, HEAD_REFUSALS[code] ?? `the server answered ${status} (${code})`, { retryable, details: { status, ...after } });
    }
    if (status === 404 || status === 410) {
      // tus: the upload is gone (aborted, expired, or the server lost it); the push decides, as above.
      return new UploadError('upload_gone', `the server no longer has this upload (${status})`, { retryable: true, details: { status } });
    }
    const meaning = answerWithoutErrorBody(status, res.getBody(), server === undefined ? 'the server' : new URL(server).origin, `the upload's ${status} answer`);
    return new UploadError(meaning.code, meaning.message, { retryable: meaning.retryable || status === 423, details: { status, ...after } });
  }
  // No response at all: the connection failed or was cut.
  const cause = (detailed.causingError ?? err) as Error;
  const source = (detailed.causingError ?? err) as unknown;
  if (source instanceof SnapferryError) return source;
  const tls = tlsErrorFrom(source, server);
  if (tls) return tls;
  return new UploadError('upload_interrupted', `the upload was interrupted: ${cause.message}`, { retryable: true, cause: err });
}

/**
 * The upload URL the server handed out (tus creation's Location) when its scheme is not --server's. No retry changes
 * what the server hands out, and Node's agent for one scheme cannot follow the other (`Protocol "http:" not
 * supported. Expected "https:"`), which a push retried for ever:
 * - http:// for an https:// --server: the server builds Location from what it sees, and behind a TLS-terminating proxy
 *   that it was not told of it sees plain HTTP; following it without the agent would send the token in the clear.
 * - https:// for an http:// --server: the server's publicUrl is https (it is meant to be reached through its proxy),
 *   and --server goes around that proxy, or publicUrl is wrong.
 */
export function schemeMismatch(server: string, uploadUrl: string): UploadError | null {
  const given = new URL(server);
  const handed = new URL(uploadUrl, server);
  if (given.protocol === handed.protocol) return null;
  const details = { server: given.origin, uploadUrl };
  if (given.protocol === 'https:') {
    return new UploadError(
      'upload_url_not_https',
      `the server handed out an upload URL on plain http:// (${handed.origin}) although --server is https://: it runs behind a ` +
        'reverse proxy (nginx) that terminates TLS and it does not know it; start `snapferry serve` with --behind-proxy (it then trusts ' +
        "X-Forwarded-Proto from the proxy), or set publicUrl in the server's config",
      { retryable: false, details },
    );
  }
  // The server's public base is the upload URL up to its uploads path (publicUrl with any prefix): the --server to give.
  const at = handed.pathname.lastIndexOf(`${UPLOADS_PATH}/`);
  const publicBase = `${handed.origin}${at > 0 ? handed.pathname.slice(0, at) : ''}`;
  return new UploadError(
    'upload_url_scheme_mismatch',
    `the server handed out an upload URL on https:// (${handed.origin}) although --server is http:// (${given.origin}): its publicUrl says ` +
      `https; give --server as ${publicBase}, or fix publicUrl in the server's config if the server is not reached over https`,
    { retryable: false, details },
  );
}

/**
 * Ends (tus termination, DELETE) an upload the client refuses to follow, at its path on --server. Best
 * effort and bounded: if it fails, the upload still expires on the server.
 */
async function endRefusedUpload(options: TusUploadOptions, uploadUrl: string): Promise<void> {
  // The upload's path below the server's public base (publicUrl may carry a prefix --server does not have).
  const path = new URL(uploadUrl, options.server).pathname;
  const at = path.lastIndexOf(`${UPLOADS_PATH}/`);
  const onOrigin = onServer(options.server, at >= 0 ? path.slice(at) : path);
  const ended = Upload.terminate(onOrigin, {
    retryDelays: [],
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.transport ? { httpStack: options.transport.httpStack } : {}),
  }).catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, 10_000).unref()));
  await Promise.race([ended, bound]).finally(() => clearTimeout(timer));
}

/**
 * Before a slice from `start`: when the server holds verified frames past every byte this upload sent, another push
 * of the same snapshot sent them while this one hashed its way to where it resumed (two timers overlapping; the
 * server's lease passes between them whenever one stops for a moment). Its frames were cut where its compression
 * level cut them (--compress auto picks one frame by frame, each push its own), so `start` is no frame boundary of
 * this upload's stream: the bytes sent from there were refused as a frame with a bad header, a PATCH of waste and
 * a push failed. Retried instead, the push resumes where that push left off, from the server's frame count. What
 * lies past this upload's end unverified is only part of the frame in flight (a cut): it is checked against this
 * upload's own frame, as after any cut.
 */
async function movedOn(options: TusUploadOptions, start: number): Promise<void> {
  const own = options.source.handedOutTo;
  if (start <= own || !options.verifiedOffset) return;
  const verified = await options.verifiedOffset();
  if (verified <= own) return;
  throw new UploadError(
    'upload_moved_on',
    `another push sent part of this upload meanwhile (the server holds ${verified} bytes, this push had reached ${own}); resuming from the server's frames`,
    { retryable: true, details: { verified, own } },
  );
}

export function uploadFramed(options: TusUploadOptions): Promise<{ url: string }> {
  return new Promise((resolveUpload, rejectUpload) => {
    // However the upload ends (a stall and Ctrl-C end it too), the retries held are told, or dropped, first.
    const retries = new HeldRetries(options.onRetry);
    const resolve = (v: { url: string }) => {
      retries.ended(null);
      resolveUpload(v);
    };
    const reject = (err: unknown) => {
      retries.ended(err);
      rejectUpload(err);
    };
    let sourceFailure: unknown = null;
    let createdUrl: string | null = options.uploadUrl ?? null;
    let lastActivity = Date.now();
    const stallMs = options.stallMs ?? DEFAULT_STALL_MS;
    // tus-js-client has no timeout of its own: a request into a silent line (no RST, no FIN) would wait for ever.
    // Aborting destroys the request's socket, so the push's next attempt takes a new connection (and a new DNS
    // lookup) and asks the server where the upload stands.
    const stall = new StallWatch(stallMs, () => (createdUrl !== null ? options.probeArrived : undefined), () => {
      done();
      void upload.abort(false);
      // The silence killed every connection open across it: the next attempt must not take one from a pool.
      options.transport?.dropConnections();
      reject(new UploadError('upload_stalled', `nothing moved for ${Math.round(stallMs / 1000)} s (the line may have gone silent); the connection was dropped`, { retryable: true }));
    });
    const watchdog = setInterval(() => stall.check(lastActivity), Math.max(50, Math.min(5000, stallMs / 8)));
    // Each attempt of a push adds its own abort listener to the push's one signal: remove it when the attempt ends,
    // or a push that retried many times warns of a listener leak (MaxListenersExceededWarning) and keeps them all.
    const onAbort = () => {
      clearInterval(watchdog);
      void upload.abort(false);
      reject(new UploadError('cancelled', 'the upload was cancelled', { retryable: false }));
    };
    const done = () => {
      clearInterval(watchdog);
      options.signal?.removeEventListener('abort', onAbort);
    };
    const settle = <T>(fn: (v: T) => void) => (v: T) => {
      done();
      fn(v);
    };

    const upload = new Upload(Buffer.alloc(0), {
      endpoint: createdUrl ? null : onServer(options.server, `${UPLOADS_PATH}/`),
      ...(createdUrl ? { uploadUrl: createdUrl } : {}),
      metadata: options.metadata,
      uploadLengthDeferred: true,
      chunkSize: options.chunkSize,
      // Short inner retries ride out a blip without re-running btrfs send; the push loop (client/push/send-snapshot.ts)
      // takes over after them and retries for as long as the user allows, not four times like tus-js-client.
      retryDelays: options.retryDelays ?? [0, 1000, 3000],
      storeFingerprintForResuming: false,
      removeFingerprintOnSuccess: true,
      // The source keeps its bytes back to the synced offset (onAfterResponse): the server may answer before its sync.
      headers: { ...options.headers, [ACK_HEADER]: ACK_WRITTEN },
      ...(options.transport ? { httpStack: options.transport.httpStack } : {}),
      fileReader: {
        openFile: () =>
          Promise.resolve({
            size: null as unknown as number,
            slice: (start: number, end: number) =>
              movedOn(options, start).then(() => options.source.slice(start, end)).then(
                ({ value, done }) => ({
                  value: value && patchBody(value.pieces, options.rateLimit, bodyPieceFor(options.linkMeter?.atLeast() ?? null)),
                  done,
                }),
                (err: unknown) => {
                  sourceFailure = err;
                  throw err;
                },
              ),
            close: () => options.source.close(),
          }),
      },
      onShouldRetry: (err, retryAttempt) => {
        if (sourceFailure !== null) return false;
        const mapped = uploadErrorFrom(err, options.server);
        // A refusal that says when to come back (Retry-After) is the push loop's to wait out: tus-js-client would
        // come back after its own short delays (0, 1, 3 s) whatever the server asked.
        if (!mapped.retryable || retryAfterOf(mapped) !== null) return false;
        // The server said the upload is gone (404/410): asking it again gets the same answer; the push loop decides
        // from the server's transfer list whether to begin a new one.
        if (mapped.code === 'upload_gone') return false;
        // Another push's transfer holds the volume: the push loop waits for it and plans this send again on what that
        // push leaves behind (a newer parent); tus-js-client would only ask again at once and call it a resume.
        if (mapped.code === 'volume_busy') return false;
        retries.failed(mapped, retryAttempt);
        return true;
      },
      onUploadUrlAvailable: () => {
        const mismatch = upload.url ? schemeMismatch(options.server, upload.url) : null;
        if (mismatch) {
          sourceFailure = mismatch;
          void upload.abort(false);
          // The server has just created the upload and would hold it (and the volume) until it expires. It is
          // ended where the client may talk to it, on --server's own origin, never on the URL it refused.
          void endRefusedUpload(options, upload.url!).finally(() => settle(reject)(mismatch));
          return;
        }
        if (upload.url) {
          createdUrl = upload.url;
          // With an endpoint, tus-js-client answers any HEAD that is not 2xx (a 500 or 503 of a server that is failing
          // for a while among them) by creating a new upload. Without one it reports the HEAD's answer as an error:
          // a server error is retried (onShouldRetry, then the push loop's backoff) and the upload kept.
          upload.options.endpoint = null;
          options.onUrl?.(upload.url);
        }
      },
      // Once an upload exists, tus-js-client must never create another one behind our back (its issue 580); with
      // the endpoint cleared it does not try, and this stays as the last guard.
      onBeforeRequest: (req) => {
        if (req.getMethod() === 'POST' && createdUrl !== null) {
          sourceFailure = new UploadError('upload_gone', 'the server no longer has this upload', { retryable: true });
          throw sourceFailure;
        }
      },
      onProgress: (sent) => {
        lastActivity = Date.now();
        options.linkMeter?.progress(sent, options.source.waitedMs);
        options.onProgress?.(sent);
      },
      onAfterResponse: (req, res) => {
        lastActivity = Date.now();
        // Until the next request's bytes, and for a refusal since its last ones: the server's time, not the line's.
        options.linkMeter?.answered(options.source.waitedMs, res.getStatus() >= 400);
        const acknowledged = Number(res.getHeader('Upload-Offset'));
        if (req.getMethod() === 'PATCH' && res.getStatus() < 300 && Number.isSafeInteger(acknowledged)) {
          options.linkMeter?.acknowledged(acknowledged, options.source.waitedMs);
          const synced = res.getHeader(ACK_SYNCED_OFFSET_HEADER);
          if (synced) options.source.synced(Number(synced));
        }
        retries.answered(res.getStatus());
      },
      onSuccess: settle(() => resolve({ url: upload.url ?? '' })),
      onError: settle((err: Error) => reject(sourceFailure instanceof Error ? sourceFailure : uploadErrorFrom(err, options.server))),
    });
    options.signal?.addEventListener('abort', onAbort, { once: true });
    options.linkMeter?.restart();
    upload.start();
  });
}
