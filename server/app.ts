/**
 * The HTTP layer: hono routes, thin over the replication core. tus owns /v1/uploads; everything else is JSON that
 * curl can script. Errors become JSON in one place (server/http-errors.ts). Every request, tus included, is admitted
 * by the gate first (server/auth.ts), and sees only what its caller may (server/views.ts).
 */
import { Hono, type Context } from 'hono';
import { arrivalsOf, type TusServer } from './upload-store/tus-server.ts';
import { uncopiedBody } from './upload-store/patch-body.ts';
import { ACK_HEADER, ACK_SYNCED_OFFSET_HEADER, ACK_WRITTEN, API_PREFIX, MAX_FRAMES_PER_PAGE, RewindRequest, SESSION_HEADER, UPLOADS_PATH, VERIFY_QUERY, routes } from '../core/protocol.ts';
import { parseName } from '../core/names.ts';
import { SnapferryError, ValidationError } from '../core/errors.ts';
import type { AppService } from './app-service.ts';
import { errorBody, errorHeaders, reasonPhrase, statusOf } from './http-errors.ts';
import { refusalOf, tusAnswer } from './upload-store/tus-refusals.ts';
import { assertAllowed, openGate, writerOf, type Caller, type Gate } from './auth.ts';
import { assertOwnUpload, ownerOf, snapshotsFor, statusFor, transfersFor, volumesFor } from './views.ts';
import { restoreHeaders } from './restore.ts';
import { restoreBody } from './restore-body.ts';
import { restoreSlots } from './restore-slots.ts';
import type { ClientCaps } from './client-caps.ts';
import { parseRestoreRequest, restoreOwner } from './restore-request.ts';
import { METRICS_PATH, scrapeMetrics } from './metrics.ts';
import type { ConnectionLimits, NodeBindings } from './connection-limits.ts';
import type { Logger } from './log.ts';
import type { VerifyJobs } from './verify/jobs.ts';
import { parseChildren, parseRecords, parseStart, readJsonBody } from './verify/request.ts';

export { DEFAULT_CLIENT } from './auth.ts';

type Env = { Variables: { caller: Caller }; Bindings: NodeBindings | undefined };

/** What bounds restore downloads: streams at once (server/restore-slots.ts), and how long one may make no progress (ms). */
export interface RestoreBounds {
  slots: ClientCaps;
  idleMs?: number;
}

export function createApp(service: AppService, tus: TusServer, log: Logger, gate: Gate = openGate(), limits?: ConnectionLimits, verify?: VerifyJobs, restore: RestoreBounds = { slots: restoreSlots() }): Hono<Env> {
  const app = new Hono<Env>();
  const arrivals = arrivalsOf(tus);
  const caller = (c: Context<Env>): Caller => c.get('caller');
  const client = (c: Context<Env>) => writerOf(caller(c));

  app.onError((err, c) => {
    const status = statusOf(err);
    // A full disk is a condition the operator fixes, not a fault of the code: one line, no stack trace, per refusal.
    if (status === 507) log.warn({ path: c.req.path, code: 'disk_full' }, 'disk full: refused with 507 until space is freed');
    else if (status >= 500) log.error({ err, path: c.req.path }, 'request failed');
    // RFC 6750 section 3: a 401 names the scheme the client should use.
    if (status === 401) c.header('WWW-Authenticate', 'Bearer realm="snapferry"');
    const body = errorBody(err);
    for (const [name, value] of Object.entries(errorHeaders(body))) c.header(name, value);
    return c.json(body, status as 500);
  });
  app.notFound((c) => {
    const body = errorBody(new SnapferryError('not_found', `no such endpoint: ${c.req.method} ${c.req.path}`));
    for (const [name, value] of Object.entries(errorHeaders(body))) c.header(name, value);
    return c.json(body, 404);
  });

  // A Response's statusText never reaches the wire (@hono/node-server writes the status alone), and Node names a status
  // it does not know "unknown": tus's 460 went out as "460 unknown".
  app.use('*', async (c, next) => {
    await next();
    const phrase = reasonPhrase(c.res.status);
    if (phrase !== undefined && c.env?.outgoing) c.env.outgoing.statusMessage = phrase;
  });

  // Everything needs a token, OPTIONS included: no snapferry client sends it, no browser (CORS preflights carry no
  // Authorization) is meant to reach this server, and one rule with no exceptions is the one that stays audited.
  // Connection caps (server/connection-limits.ts): the total before the token is even read, the caller's own once
  // it is known; either way before the body is read.
  app.use('*', async (c, next) => {
    limits?.checkAccepted(c.env);
    const who = await gate.admit(c.req.raw).catch((err: unknown) => {
      limits?.refusedUnknown(c.env);
      throw err;
    });
    const path = c.req.path;
    assertAllowed(who, c.req.method, path === UPLOADS_PATH || path.startsWith(`${UPLOADS_PATH}/`), path === routes.verify || path.startsWith(`${routes.verify}/`));
    limits?.enter(who, c.env);
    c.set('caller', who);
    await next();
  });

  app.all(UPLOADS_PATH, async (c) => tusAnswer(await tus.handleWeb(c.req.raw), c.req.raw.headers));
  app.all(`${UPLOADS_PATH}/`, async (c) => tusAnswer(await tus.handleWeb(c.req.raw), c.req.raw.headers));
  app.all(`${UPLOADS_PATH}/:id`, async (c) => {
    const id = c.req.param('id');
    // tus downloads (GET on an upload) stay off: the spool is not for reading back. (HEAD, which hono would also
    // route to a GET handler, is how tus clients ask for the offset: it goes on to tus.)
    if (c.req.method === 'GET') throw new SnapferryError('method_not_allowed', 'uploads cannot be downloaded');
    if (c.req.method === 'OPTIONS') return tusAnswer(await tus.handleWeb(c.req.raw), c.req.raw.headers);
    // Its place among the upload's requests, taken before anything here waits: tus's lock goes by it.
    const left = arrivals?.arrive(c.req.raw, id);
    try {
      await service.lookUpUpload(id);
      assertOwnUpload(service, caller(c), id);
      service.enterRequest(id, session(c));
      try {
        if (c.req.method === 'PATCH') await service.noteUploadRequest(id, Number(c.req.header('upload-offset')), c.req.header(ACK_HEADER) === ACK_WRITTEN);
        const res = await tusAnswer(await tus.handleWeb(withUncopiedBody(c)), c.req.raw.headers);
        if (c.req.method === 'PATCH') {
          const synced = res.ok ? service.syncedOffset(id) : null;
          if (synced !== null) res.headers.set(ACK_SYNCED_OFFSET_HEADER, String(synced));
          await noteCut(c, id, res);
        }
        return res;
      } finally {
        service.leaveRequest(id);
      }
    } finally {
      left?.();
    }
  });

  app.get(`${API_PREFIX}/status`, async (c) => c.json(await statusFor(service, caller(c))));
  // Prometheus text format; a client token sees its own series only (server/metrics.ts).
  app.get(METRICS_PATH, async (c) => {
    const scrape = await scrapeMetrics(service, caller(c));
    return c.body(scrape.body, 200, { 'content-type': scrape.contentType });
  });
  app.get(`${API_PREFIX}/volumes`, async (c) => c.json(await volumesFor(service, caller(c), c.req.query('client'))));
  app.get(`${API_PREFIX}/volumes/:volume/snapshots`, async (c) => {
    const volume = parseName(c.req.param('volume'), 'volume');
    return c.json(await snapshotsFor(service, caller(c), volume, c.req.query('client')));
  });
  // Restore: the snapshot as a framed send stream (server/restore.ts); a read, so an admin token may too.
  app.get(`${API_PREFIX}/volumes/:volume/snapshots/:name/stream`, async (c) => {
    const request = parseRestoreRequest(c.req.param(), c.req.query());
    const who = caller(c);
    const client = restoreOwner(who, c.req.query('client'));
    // Taken before btrfs send starts, given back when the body closes (ended, failed, or its reader gone).
    const slot = restore.slots.take(who.role === 'client' ? who.client : `admin ${who.name}`);
    let stream;
    try {
      stream = await service.restoreStream({ ...request, client, signal: c.req.raw.signal });
    } catch (err) {
      slot();
      throw err;
    }
    stream.body.once('close', slot);
    const where = { client, volume: request.volume, snapshot: request.snapshot };
    const broke = (err: Error) => log.warn({ err, ...where }, 'a restore stream broke off: the client resumes, and a lasting fault is refused then');
    const idle = restore.idleMs === undefined ? undefined : { ms: restore.idleMs, ended: () => log.warn({ ...where, idleMs: restore.idleMs }, 'a restore download made no progress for the idle timeout: ended, its send stopped') };
    return new Response(restoreBody(stream.body, c.env?.outgoing, broke, idle), { headers: restoreHeaders(stream) });
  });
  app.get(`${API_PREFIX}/transfers`, async (c) => c.json({ transfers: await transfersFor(service, caller(c), c.req.query('client')) }));
  app.get(`${API_PREFIX}/transfers/:id`, async (c) => {
    const id = c.req.param('id');
    await service.lookUpUpload(id);
    return c.json(await service.transfer(ownerOf(service, caller(c), id), id));
  });
  app.post(`${API_PREFIX}/transfers/:id/abort`, async (c) => c.json(await service.abort(client(c), c.req.param('id'))));
  app.post(`${API_PREFIX}/transfers/:id/release`, async (c) => c.json(await service.release(client(c), c.req.param('id'), session(c))));
  app.get(`${API_PREFIX}/transfers/:id/frames`, async (c) => {
    const from = Number(c.req.query('from') ?? 0);
    const limit = Number(c.req.query('limit') ?? MAX_FRAMES_PER_PAGE);
    if (!Number.isSafeInteger(from) || from < 0 || !Number.isSafeInteger(limit) || limit < 1) {
      throw new ValidationError('from and limit must be whole numbers, from >= 0 and limit >= 1');
    }
    const id = c.req.param('id');
    await service.lookUpUpload(id);
    return c.json({ frames: await service.frames(ownerOf(service, caller(c), id), id, from, limit) });
  });
  app.post(`${API_PREFIX}/transfers/:id/rewind`, async (c) => {
    const body = RewindRequest.safeParse(await c.req.json().catch(() => null));
    if (!body.success) throw new ValidationError('the body must be JSON like {"frames": 12}');
    return c.json(await service.rewind(client(c), c.req.param('id'), session(c), body.data.frames));
  });
  // Verify (server/verify/jobs.ts): digests of the server's copy of a snapshot, in bounded batches.
  if (verify) {
    const jobs = verify;
    app.post(routes.verify, async (c) => {
      const start = parseStart(caller(c), c.req.query(VERIFY_QUERY.client), await readJsonBody(c.req.raw));
      return c.json(await jobs.start(start));
    });
    app.get(`${routes.verify}/:id`, (c) => c.json(jobs.get(caller(c), c.req.param('id'))));
    app.delete(`${routes.verify}/:id`, (c) => {
      jobs.release(caller(c), c.req.param('id'));
      return c.body(null, 204);
    });
    app.post(`${routes.verify}/:id/children`, async (c) => {
      const body = parseChildren(await readJsonBody(c.req.raw));
      return c.json(await jobs.children(caller(c), c.req.param('id'), body));
    });
    app.post(`${routes.verify}/:id/records`, async (c) => {
      const body = parseRecords(await readJsonBody(c.req.raw));
      return c.json(await jobs.records(caller(c), c.req.param('id'), body.paths));
    });
  }  else {
    // A server with no tree of its own (archive mode keeps streams, sealed ones among them) has nothing to digest.
    app.all(`${routes.verify}/*`, () => { throw noVerify(); });
    app.all(routes.verify, () => { throw noVerify(); });
  }
  return app;

  /** A PATCH that left the upload short of offset + body length: the body was cut off (the link broke). */
  async function noteCut(c: Context<Env>, id: string, res: Response): Promise<void> {
    const offset = Number(c.req.header('upload-offset'));
    const length = Number(c.req.header('content-length'));
    if (!Number.isFinite(offset) || !Number.isFinite(length) || !service.isUploading(id)) return;
    const after = (await service.progress(id)).wireOffset;
    if (after < offset + length) await service.noteInterruption(id, after, refusalOf(res));
  }
}

/**
 * The request tus reads, its PATCH body a web stream over the Node request that copies nothing (patch-body.ts). The
 * same object, not a new Request: the gate knows its caller by it (server/auth.ts). Without Node bindings (requests
 * made in-process with app.request()) the body stays as it is, and so does a body whose connection is already gone
 * (@hono/node-server hands on what of it arrived before the cut).
 */
function withUncopiedBody(c: Context<Env>): Request {
  const incoming = c.env?.incoming;
  if (c.req.method === 'PATCH' && incoming !== undefined && incoming.readable && !incoming.destroyed) {
    Object.defineProperty(c.req.raw, 'body', { value: uncopiedBody(incoming), configurable: true });
  }
  return c.req.raw;
}

function noVerify(): SnapferryError {
  return new SnapferryError('verify_unavailable', 'this server keeps streams in an archive, not snapshots it could digest; restore a snapshot to check it');
}

/** Requests without a session header (curl, other tus clients) share one anonymous session. */
function session(c: Context): string {
  return (c.req.header(SESSION_HEADER) ?? 'anonymous').slice(0, 100);
}
