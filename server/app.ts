/**
 * The HTTP layer: hono routes, thin over the replication core. tus owns /v1/uploads; everything else is JSON that
 * curl can script. Errors become JSON in one place (server/http-errors.ts).
 */
import { Hono, type Context } from 'hono';
import type { Server as TusServer } from '@tus/server';
import { API_PREFIX, UPLOADS_PATH } from '../core/protocol.ts';
import { parseName, type SafeName } from '../core/names.ts';
import { SnapferryError } from '../core/errors.ts';
import type { ReplicationService } from './replication.ts';
import { errorBody, statusOf } from './http-errors.ts';
import type { Logger } from './log.ts';

/** Until tokens exist (a later issue) every caller is the one client `default`. */
export const DEFAULT_CLIENT = 'default' as SafeName;

export function createApp(service: ReplicationService, tus: TusServer, log: Logger): Hono {
  const app = new Hono();
  const client = (_c: Context): SafeName => DEFAULT_CLIENT;

  app.onError((err, c) => {
    const status = statusOf(err);
    if (status >= 500) log.error({ err, path: c.req.path }, 'request failed');
    return c.json(errorBody(err), status as 500);
  });
  app.notFound((c) => c.json(errorBody(new SnapferryError('not_found', `no such endpoint: ${c.req.method} ${c.req.path}`)), 404));

  // tus downloads (GET on an upload) stay off: the spool is not for reading back.
  app.get(`${UPLOADS_PATH}/*`, () => {
    throw new SnapferryError('method_not_allowed', 'uploads cannot be downloaded');
  });
  app.all(UPLOADS_PATH, (c) => tus.handleWeb(c.req.raw));
  app.all(`${UPLOADS_PATH}/*`, (c) => tus.handleWeb(c.req.raw));

  app.get(`${API_PREFIX}/status`, async (c) => c.json(await service.status()));
  app.get(`${API_PREFIX}/volumes`, async (c) => c.json({ client: client(c), volumes: await service.volumes(client(c)) }));
  app.get(`${API_PREFIX}/volumes/:volume/snapshots`, async (c) => {
    const volume = parseName(c.req.param('volume'), 'volume');
    return c.json({ volume, ...(await service.snapshots(client(c), volume)) });
  });
  app.get(`${API_PREFIX}/transfers`, async (c) => c.json({ transfers: await service.transfers(client(c)) }));
  app.get(`${API_PREFIX}/transfers/:id`, async (c) => c.json(await service.transfer(client(c), c.req.param('id'))));
  app.post(`${API_PREFIX}/transfers/:id/abort`, async (c) => c.json(await service.abort(client(c), c.req.param('id'))));
  return app;
}
