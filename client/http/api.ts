/**
 * The client's view of the server's JSON API: every answer is parsed with the shared schemas (core/protocol.ts), and
 * every failure is a typed error that says whether retrying can help.
 */
import type { z } from 'zod';
import { SnapferryError } from '../../core/errors.ts';
import { ErrorBody, FrameList, retryableAnswer, MAX_FRAMES_PER_PAGE, SnapshotList, Status, Transfer, TransferList, VolumeList, routes, type FrameRecord } from '../../core/protocol.ts';
import { retryAfterDetails } from './retry-after.ts';
import { answerWithoutErrorBody } from './answer.ts';
import { DEFAULT_STALL_MS, closedBeforeAnswer, createTransport, speaksTls, tlsErrorFrom, type Transport } from './transport.ts';
import { apiPrefixGiven, onServer, serverBase } from './server-path.ts';

export class ServerError extends SnapferryError {
  constructor(
    code: string,
    message: string,
    readonly status: number | null,
    options: { retryable: boolean; details?: Record<string, unknown>; cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/**
 * The ServerError that an error answer (`status`, its body `text` and `headers`) means, for each request the client
 * makes itself (the JSON API here; the restore's catalog and download, client/restore/http.ts): the server's own
 * ErrorBody when it sent one, else what the status means from whatever answered in its place (client/http/answer.ts);
 * either with the wait that Retry-After asks for. `origin` and `what` (e.g. "GET https://…/v1/status") name the server
 * and the request in the latter's words.
 */
export function errorFromAnswer(status: number, text: string, headers: { get(name: string): string | null }, origin: string, what: string): ServerError {
  const parsed = ErrorBody.safeParse(jsonOrNull(text));
  const after = retryAfterDetails(headers.get('retry-after'), parsed.data?.error.details?.retryAfterSeconds, Date.now());
  if (parsed.success) {
    const e = parsed.data.error;
    return new ServerError(e.code, e.message, status, { retryable: retryableAnswer(e, status), details: { ...e.details, ...after } });
  }
  // No snapferry error body: something else answered (a proxy, a web server, a wrong port or path).
  const meaning = answerWithoutErrorBody(status, text, origin, what);
  return new ServerError(meaning.code, meaning.message, status, { retryable: meaning.retryable, details: after });
}

/** A body's JSON, or null when it is empty or not JSON (a proxy's HTML page). */
function jsonOrNull(text: string): unknown {
  try {
    return text.length > 0 ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

export interface ApiOptions {
  server: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Trust and proxy (client/http/transport.ts); default: built from the environment, no extra CA. */
  transport?: Transport;
  /** A request with no answer for this long is dropped (its connection too) as a retryable error (--stall-timeout). */
  stallMs?: number;
  /** Told the bytes of each request's body and of each answer's body (verify reports what crossed the line). */
  meter?: (sent: number, received: number) => void;
}

interface RequestOptions {
  stallMs?: number;
  afterStop?: boolean;
}

export class ServerApi {
  readonly base: URL;
  /** Shared with the tus upload of the same server, so both take the same route with the same trust. */
  readonly transport: Transport;

  constructor(private readonly options: ApiOptions) {
    this.base = serverBase(options.server);
    this.transport = options.transport ?? createTransport(this.base);
  }

  url(path: string): string {
    return onServer(this.base, path);
  }

  status(): Promise<Status> {
    return this.request('GET', routes.status, Status);
  }

  volumes(): Promise<VolumeList> {
    return this.request('GET', routes.volumes, VolumeList);
  }

  snapshots(volume: string): Promise<SnapshotList> {
    return this.request('GET', routes.snapshots(volume), SnapshotList);
  }

  transfers(): Promise<TransferList> {
    return this.request('GET', routes.transfers, TransferList);
  }

  /** `stallMs`: this request's own stall timeout (default the client's). */
  transfer(id: string, options: { stallMs?: number } = {}): Promise<Transfer> {
    return this.request('GET', routes.transfer(id), Transfer, undefined, options);
  }

  abort(id: string): Promise<Transfer> {
    return this.request('POST', routes.abort(id), Transfer);
  }

  rewind(id: string, frames: number): Promise<Transfer> {
    return this.request('POST', routes.rewind(id), Transfer, { frames });
  }

  /**
   * Tells the server that this push (its session header) has stopped and lets go of upload `id`: the same command run
   * again then goes on at once instead of waiting out the upload's lease. `stallMs`: how long the stopping command
   * waits for the answer. Sent after the stop, so the stop does not cancel it.
   */
  release(id: string, stallMs: number): Promise<Transfer> {
    return this.request('POST', routes.release(id), Transfer, undefined, { stallMs, afterStop: true });
  }

  /** The record of verified frame `index`, or null when the server holds fewer frames. */
  async frame(id: string, index: number): Promise<FrameRecord | null> {
    const page = await this.request('GET', routes.frames(id, index, 1), FrameList);
    return page.frames.find((f) => f.index === index) ?? null;
  }

  /** Every verified frame's record, page by page. */
  async frames(id: string): Promise<FrameRecord[]> {
    const all: FrameRecord[] = [];
    for (;;) {
      const page = await this.request('GET', routes.frames(id, all.length, MAX_FRAMES_PER_PAGE), FrameList);
      all.push(...page.frames);
      if (page.frames.length < MAX_FRAMES_PER_PAGE) return all;
    }
  }

  /**
   * One JSON request, its answer parsed with `schema`; every failure a ServerError that says if a retry can help.
   * `stallMs`: this request's own stall timeout; `afterStop`: the request is what a stopped command still says (the
   * options' signal does not cancel it).
   */
  async request<T extends z.ZodType>(method: string, path: string, schema: T, json?: unknown, options: RequestOptions = {}): Promise<z.infer<T>> {
    const url = this.url(path);
    // The answers are small, so one deadline covers connecting, the answer and its body: on a line gone silent no
    // byte ever comes, and only giving up (which destroys the connection) lets the next try take a new one.
    const stallMs = options.stallMs ?? this.options.stallMs ?? DEFAULT_STALL_MS;
    const stalled = AbortSignal.timeout(stallMs);
    const stop = options.afterStop === true ? undefined : this.options.signal;
    const signal = stop ? AbortSignal.any([stop, stalled]) : stalled;
    let res: Awaited<ReturnType<Transport['fetch']>> | undefined;
    let text: string;
    const body = json === undefined ? undefined : JSON.stringify(json);
    try {
      res = await this.transport.fetch(url, {
        method,
        headers: {
          accept: 'application/json',
          ...(json === undefined ? {} : { 'content-type': 'application/json' }),
          ...this.options.headers,
        },
        ...(body === undefined ? {} : { body }),
        signal,
      });
      text = await res.text();
      this.options.meter?.(body === undefined ? 0 : Buffer.byteLength(body), Buffer.byteLength(text));
    } catch (err) {
      if (stalled.aborted && !stop?.aborted) {
        // Every connection open across the silence is as dead as this one: the next request takes a new one.
        this.transport.dropConnections();
        throw new ServerError('server_stalled', `no answer from ${this.base.origin} for ${Math.round(stallMs / 1000)} s (the line may have gone silent); the connection was dropped`, null, {
          retryable: true,
          cause: err,
        });
      }
      // The user stopped the command (Ctrl-C): said as such, never as a server that cannot be reached.
      if (stop?.aborted) {
        throw new ServerError('cancelled', `interrupted before ${this.base.origin} answered ${method} ${path}`, null, { retryable: false, cause: err });
      }
      const untrusted = tlsErrorFrom(err, this.base);
      if (untrusted) throw untrusted;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.message ?? (err as Error).message;
      // The answer had begun: the connection broke under it, which is no unreachable server.
      if (res !== undefined) throw new ServerError('answer_interrupted', `the answer from ${this.base.origin} broke off: ${why}; trying again`, res.status, { retryable: true, cause: err });
      if (this.base.protocol === 'http:' && this.transport.proxy === null && closedBeforeAnswer(err) && (await speaksTls(this.base))) {
        throw new ServerError('wrong_scheme', `${this.base.origin} speaks HTTPS, not plain HTTP: give --server as https://${this.base.host}`, null, { retryable: false, cause: err });
      }
      throw new ServerError('server_unreachable', `cannot reach ${this.base.origin}: ${why}`, null, {
        retryable: true,
        cause: err,
      });
    }
    if (!res.ok) {
      const err = errorFromAnswer(res.status, text, res.headers, this.base.origin, `${method} ${url}`);
      const prefixed = apiPrefixGiven(this.base, res.status, err.code, err.message);
      // A mistake in --server (or the config's server), which no retry heals: a usage error, as a URL without a scheme.
      if (prefixed) throw new ServerError('server_url_api_path', prefixed.message, res.status, { retryable: false, details: { server: prefixed.suggestion }, cause: err });
      throw err;
    }
    const parsed = schema.safeParse(jsonOrNull(text));
    if (!parsed.success) {
      throw new ServerError('bad_response', `${url} answered something that is not a snapferry response; is --server right?`, res.status, {
        retryable: false,
      });
    }
    return parsed.data;
  }
}
