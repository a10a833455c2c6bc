/**
 * The restore's requests: the volume's catalog, and one download of the framed stream into the spool. A download
 * asks the server to start at the spool's last verified frame (fromFrame, chain), past the part of the next frame
 * that a cut download left in the spool (skip), verifies every frame as it comes (core/wire FrameParser: decode,
 * length, SHA-256, order, chain, end frame), and records only verified frames. A cut or a stall keeps what arrived of
 * the frame in flight, so a line that cuts more often than a frame takes still moves on; a bad frame costs that frame. A
 * stream the restore's key cannot open is refused at frame 0's seal header, as the receive would refuse it after the
 * whole download (sealingWatch). Every failure is a typed error that says whether another try can help
 * (client/restore/restore.ts decides on it).
 */
import { withClientUuids } from '../../core/uuid-namespace.ts';
import { RESTORE_HEADERS, SnapshotList, routes, type Snapshot } from '../../core/protocol.ts';
import { ByteQueue, FrameError, FrameParser, SEALING_PREFIX_BYTES, sealingOfStart, type FrameParserState } from '../../core/wire/index.ts';
import { restoreRefusal, type Sealing } from '../../core/sealing.ts';
import { ServerError, errorFromAnswer, type ServerApi } from '../http/api.ts';
import { tlsErrorFrom } from '../http/transport.ts';
import type { RestoreSpool } from './spool.ts';

export interface RestoreHttp {
  api: ServerApi;
  /** Authorization and the like, on every request. */
  headers: Record<string, string>;
  /** Whose snapshots: set only with an admin token (RESTORE_QUERY.client). */
  client?: string;
  signal?: AbortSignal;
}

/**
 * What the transport's fetch really returns (global fetch or undici's): a Response. ApiFetch types only what the JSON
 * API reads; a download also needs the headers and the body as a stream.
 */
interface StreamingResponse {
  ok: boolean;
  status: number;
  statusText: string;
  text(): Promise<string>;
  headers: { get(name: string): string | null };
  body: ReadableStream<Uint8Array> | null;
}

/**
 * The volume's snapshots on the server, oldest first, each as `own` (the UUIDs of the snapshots here) knows it: one
 * whose UUID the server lost is listed by its namespaced one (Snapshot.uuidUnknown, core/uuid-namespace.ts).
 */
export async function fetchCatalog(http: RestoreHttp, volume: string, own: readonly string[] = []): Promise<Snapshot[]> {
  if (http.client === undefined) {
    const list = await http.api.snapshots(volume);
    return withClientUuids(list.snapshots, list.client, own);
  }
  const url = http.api.url(`${routes.snapshots(volume)}?client=${encodeURIComponent(http.client)}`);
  const res = await send(http, url, http.signal);
  const parsed = SnapshotList.safeParse(await res.json());
  if (!parsed.success) throw new ServerError('bad_response', `${url} answered something that is not a snapferry snapshot list; is --server right?`, res.status, { retryable: false });
  // An admin's listing of one client: that client's namespace.
  return withClientUuids(parsed.data.snapshots, http.client, own);
}

/** The slowest pace at which a server regenerates and hashes the frames a resumed restore skips. */
const HASHED_PER_SECOND = 20 * 1024 * 1024;

export interface DownloadOptions {
  volume: string;
  snapshot: string;
  parentUuid: string | null;
  /** The local parent's ctransid now, where it is the original that was pushed (the server refuses a changed one). */
  parentCtransid?: number;
  /** No byte for this long: the attempt is dropped (a link that hangs rather than breaks) and retried. */
  stallMs: number;
  /**
   * How the restore opens sealed frames: the configured key's id (hex), or null with no key. A stream whose first
   * bytes say it cannot be opened so is refused there (core/sealing.ts restoreRefusal), before the rest is downloaded.
   */
  sealing: Sealing;
  /** After every read from the network: where the verified frames stand, and the unverified bytes after them. */
  onProgress?: (state: FrameParserState, pendingBytes: number) => void;
}

/** Downloads from the spool's last verified frame until the end frame has verified and is spooled. */
export async function downloadInto(spool: RestoreSpool, http: RestoreHttp, opts: DownloadOptions): Promise<void> {
  const from = spool.state;
  if (from.ended) return;
  const partial = await spool.partial();
  // A key the stream cannot be opened with is said at its frame 0, not once the whole stream is in and the receive
  // opens it: over a slow line that is days. Looked at in what the spool holds first (a resumed download, or what a
  // cut kept of frame 0), so that such a download is refused before it is asked for.
  const watchStart = sealingWatch(await spool.head(SEALING_PREFIX_BYTES), opts.sealing);
  const url = http.api.url(
    routes.restoreStream(opts.volume, opts.snapshot, {
      parent: opts.parentUuid,
      chunkSize: spool.identity.chunkSize,
      fromFrame: from.framesVerified,
      chain: from.chain.toString('hex'),
      skip: partial.length,
      ...(opts.parentCtransid !== undefined ? { parentCtransid: opts.parentCtransid } : {}),
      ...(http.client !== undefined ? { client: http.client } : {}),
    }),
  );
  const stall = new AbortController();
  // A silence killed every connection open across it: the next try must not take one from a pool.
  stall.signal.addEventListener('abort', () => http.api.transport.dropConnections(), { once: true });
  const signal = http.signal ? AbortSignal.any([http.signal, stall.signal]) : stall.signal;
  let timer: NodeJS.Timeout | undefined;
  const alive = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(), opts.stallMs);
  };
  try {
    // Resuming, the server first regenerates and hashes the frames the spool holds before it answers: the answer
    // may take that long on top of the stall timeout, but no longer (a silent line must not hold the restore for
    // ever). btrfs send and SHA-256 go well over HASHED_PER_SECOND on any machine that serves backups.
    timer = setTimeout(() => stall.abort(), opts.stallMs + (from.rawOffset / HASHED_PER_SECOND) * 1000);
    const res = await send(http, url, signal, stall.signal);
    alive();
    checkAnswer(res, opts, spool.identity.chunkSize, from.framesVerified, partial.length, url);
    if (res.body === null) throw new ServerError('bad_response', `${url} answered without a body`, res.status, { retryable: true });
    const parser = new FrameParser({ chunkSize: spool.identity.chunkSize, state: from });
    // The bytes the parser holds, kept here too: a frame that verifies is written to the spool as it came.
    const wire = new ByteQueue();
    // A verified frame whose append failed (a full disk): its bytes lead what is kept of the download, not the next
    // frame's, which were kept as the start of this one and made the next run fail on a frame out of order.
    let unwritten: Buffer = Buffer.alloc(0);
    const take = async (chunk: Buffer) => {
      wire.push(chunk);
      for (const frame of parser.push(chunk)) {
        const bytes = wire.take(frame.wireEnd - frame.wireStart);
        try {
          await spool.append(bytes, frame);
        } catch (err) {
          unwritten = bytes;
          throw err;
        }
      }
    };
    const reader = res.body.getReader();
    try {
      await take(partial);
      for (;;) {
        const { done, value } = await reader.read().catch((err: unknown) => {
          throw readFailure(err, 'read', url, stall.signal, http.signal);
        });
        if (done) break;
        alive();
        const chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
        // Before the bytes are verified or kept: a refused stream leaves the spool as it was.
        watchStart(chunk);
        await take(chunk);
        opts.onProgress?.(spool.state, wire.length);
        if (parser.state().ended) break;
      }
      // Throws stream_truncated (retryable) when the body ended before the end frame: the link was cut.
      parser.finish();
    } catch (err) {
      // A cut keeps what arrived of the frame in flight; a frame that failed keeps nothing of itself. Either is
      // housekeeping: a spool that cannot be written must not hide why the download ended.
      const housekeeping = err instanceof FrameError && err.code !== 'stream_truncated' ? spool.dropPartial() : spool.keepPartial(Buffer.concat([unwritten, wire.take(wire.length)]));
      await housekeeping.catch(() => undefined);
      throw err;
    } finally {
      reader.releaseLock();
      await res.body.cancel().catch(() => undefined);
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Looks at a stream's first bytes as they come, `start` (what the spool holds of them) and then each `more`, until
 * they tell how it is sealed; throws the receive's SealError (core/sealing.ts restoreRefusal) when the restore cannot
 * open it with `sealing`. SEALING_PREFIX_BYTES tell it or never will here (sealingOfStart); past them it looks no more.
 */
function sealingWatch(start: Buffer, sealing: Sealing): (more: Buffer) => void {
  let seen: Buffer | null = Buffer.alloc(0);
  const look = (more: Buffer) => {
    if (seen === null) return;
    seen = Buffer.concat([seen, more.subarray(0, Math.max(0, SEALING_PREFIX_BYTES - seen.length))]);
    const found = sealingOfStart(seen);
    if (found !== undefined) {
      const refusal = restoreRefusal(found, sealing);
      if (refusal !== null) throw refusal;
    }
    if (found !== undefined || seen.length >= SEALING_PREFIX_BYTES) seen = null;
  };
  look(start);
  return look;
}

/** One GET; network failures and error answers become ServerErrors. */
async function send(http: RestoreHttp, url: string, signal?: AbortSignal, stalled?: AbortSignal): Promise<StreamingResponse & { json(): Promise<unknown> }> {
  let res: StreamingResponse & { json(): Promise<unknown> };
  try {
    res = (await http.api.transport.fetch(url, { method: 'GET', headers: { ...http.headers }, ...(signal ? { signal } : {}) })) as StreamingResponse & {
      json(): Promise<unknown>;
    };
  } catch (err) {
    throw readFailure(err, 'connect', url, stalled, http.signal);
  }
  if (res.ok) return res;
  const text = await res.text().catch(() => '');
  // Said as push says it: a proxy's 502 is the server behind it down, not a wrong address.
  throw errorFromAnswer(res.status, text, res.headers, new URL(url).origin, `GET ${url}`);
}

/** The answer must be the stream asked for: another snapshot, parent or starting frame would spool foreign frames. */
function checkAnswer(res: StreamingResponse, opts: DownloadOptions, chunkSize: number, fromFrame: number, skip: number, url: string): void {
  const got = (name: string) => res.headers.get(name);
  const expected: [string, string][] = [
    [RESTORE_HEADERS.parentUuid, opts.parentUuid ?? 'none'],
    [RESTORE_HEADERS.chunkSize, String(chunkSize)],
    [RESTORE_HEADERS.fromFrame, String(fromFrame)],
  ];
  // A server that ignored skip would send bytes the spool holds again, spliced after them.
  if (skip > 0) expected.push([RESTORE_HEADERS.skip, String(skip)]);
  const wrong = expected.filter(([name, value]) => got(name) !== value);
  if (got(RESTORE_HEADERS.uuid) === null) wrong.push([RESTORE_HEADERS.uuid, 'present']);
  if (wrong.length === 0) return;
  throw new ServerError('bad_response', `${url} did not answer with the stream asked for (${wrong.map(([n, v]) => `${n}: ${got(n) ?? 'missing'}, not ${v}`).join('; ')})`, res.status, {
    retryable: false,
  });
}

/** A failed fetch or body read: the user's Ctrl-C as it is; a stall, a cut or a refused connection to retry. */
function readFailure(err: unknown, phase: 'connect' | 'read', url: string, stalled?: AbortSignal, user?: AbortSignal): unknown {
  if (user?.aborted) return err;
  const origin = new URL(url).origin;
  if (stalled?.aborted) return new ServerError('download_stalled', `the download from ${origin} stalled: no byte for a while`, null, { retryable: true, cause: err });
  const untrusted = tlsErrorFrom(err, url);
  if (untrusted) return untrusted;
  const why = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
  return phase === 'connect'
    ? new ServerError('server_unreachable', `cannot reach ${origin}: ${why}`, null, { retryable: true, cause: err })
    : new ServerError('download_interrupted', `the download from ${origin} broke off: ${why}`, null, { retryable: true, cause: err });
}
