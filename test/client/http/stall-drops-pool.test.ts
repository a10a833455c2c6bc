/**
 * A line that goes silent (a NAT that forgot its state) kills every connection open across it, not only the one a
 * request stalled on. After a stall the client must not send its next request into another pooled connection: it
 * would wait out a whole stall timeout again (the bench's silent line lost 30 s more that way). Here a real server
 * stops answering on every connection it has, as a forgotten line does, and answers new ones.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { z } from 'zod';
import { ServerApi, ServerError } from '../../../client/http/api.ts';
import { createTransport, type Transport } from '../../../client/http/transport.ts';

const Ok = z.object({ ok: z.boolean() });

/** A server whose connections can be silenced, as a line that forgot them: requests on them are never answered. */
async function silenceable(t: TestContext) {
  const silenced = new Set<Socket>();
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    if (!silenced.has(req.socket)) res.end(JSON.stringify({ ok: true }));
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket: Socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, sockets, silence: () => sockets.forEach((s) => silenced.add(s)) };
}

test('dropConnections: the next request of the JSON API and of the upload stack opens a new connection', async (t) => {
  const { url, sockets, silence } = await silenceable(t);
  const transport = createTransport(url);
  t.after(() => transport.close());
  const api = new ServerApi({ server: url, transport });
  await api.request('GET', '/a', Ok);
  const viaTus = async () => {
    const req = transport.httpStack.createRequest('HEAD', `${url}/b`);
    return (await req.send(null)).getStatus();
  };
  assert.equal(await viaTus(), 200);
  const before = sockets.size;
  silence();
  transport.dropConnections();
  assert.deepEqual(await api.request('GET', '/c', Ok, undefined, { stallMs: 3000 }), { ok: true });
  assert.equal(await viaTus(), 200);
  assert.equal(sockets.size, before + 2, 'a request after dropConnections went on a pooled connection');
});

test('a JSON request that stalled drops the pooled connections: the next one is answered on a new one', async (t) => {
  const { url, sockets, silence } = await silenceable(t);
  const real = createTransport(url);
  t.after(() => real.close());
  let dropped = 0;
  const transport: Transport = { ...real, fetch: real.fetch, dropConnections: () => (dropped++, real.dropConnections()) };
  const api = new ServerApi({ server: url, transport });
  // undici opens a second connection for a request that comes right after the first answer, then reuses both.
  for (let i = 0; i < 4; i++) await api.request('GET', '/a', Ok);
  assert.equal(sockets.size, 2, 'the pool did not hold two connections');
  silence();
  const stalled = await api.request('GET', '/b', Ok, undefined, { stallMs: 300 }).catch((e: unknown) => e);
  assert.ok(stalled instanceof ServerError && stalled.code === 'server_stalled', String(stalled));
  assert.equal(dropped, 1, 'the stall left the pool as it was');
  assert.deepEqual(await api.request('GET', '/c', Ok, undefined, { stallMs: 3000 }), { ok: true });
});
