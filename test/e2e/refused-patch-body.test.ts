// A PATCH refused before its body was read (409 transfer_locked, 429 with Retry-After) must stop sending its body:
// on a slow line every byte after the answer is the line's time spent on nothing (client/http/stop-body-on-answer.ts).
// The client's own HTTP stack (createTransport) sends a 4 MB body over a 1 MB/s line to a server that answers 409 at
// once and reads nothing; the line counts what crossed.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startChaosProxy } from '../chaos/chaos-proxy.ts';
import { createTransport } from '../../client/http/transport.ts';
import { patchBody } from '../../client/upload/patch-body.ts';

const BODY = 4 * 1024 * 1024;
const RATE = 1024 * 1024;

test('a PATCH answered 409 before its body was read stops sending the body, and the answer still reaches the client', { timeout: 60_000 }, async (t) => {
  let answered = 0;
  const port = await refusingServer(t, { 'retry-after': '3' }, 'transfer_locked', () => answered++);
  const line = await startChaosProxy({ target: { host: '127.0.0.1', port } });
  t.after(() => line.close());
  line.setRate(RATE);

  const transport = createTransport(`http://127.0.0.1:${line.port}`);
  t.after(() => transport.close());
  const req = transport.httpStack.createRequest('PATCH', `http://127.0.0.1:${line.port}/v1/uploads/x`);
  req.setHeader('Upload-Offset', '0');
  const started = Date.now();
  const res = await req.send(patchBody([Buffer.alloc(BODY, 7)]));
  assert.equal(res.getStatus(), 409);
  assert.match(res.getBody(), /transfer_locked/);
  assert.equal(answered, 1);
  t.diagnostic(`answer after ${Date.now() - started} ms, ${line.stats().upstreamBytes} bytes crossed by then`);
  // Long enough for the whole body to cross the line had it kept going (4 s at 1 MB/s from the start).
  await sleep(Math.max(0, (BODY / RATE) * 1000 + 1000 - (Date.now() - started)));
  const crossed = line.stats().upstreamBytes;
  t.diagnostic(`${crossed} bytes crossed in all`);
  assert.ok(crossed < BODY / 4, `${crossed} bytes of a ${BODY}-byte body crossed the line after a 409 that read none of it`);
});

test('a refusal that closes the connection (Connection: close) still lets the socket close, and the process exit', { timeout: 60_000 }, async (t) => {
  const port = await refusingServer(t, { connection: 'close' }, 'offset_mismatch');
  const transport = createTransport(`http://127.0.0.1:${port}`);
  t.after(() => transport.close());
  const req = transport.httpStack.createRequest('PATCH', `http://127.0.0.1:${port}/v1/uploads/x`);
  req.setHeader('Upload-Offset', '0');
  const sending = req.send(patchBody([Buffer.alloc(BODY, 7)]));
  const socket = await new Promise<Socket>((resolve) => (req.getUnderlyingObject() as http.ClientRequest).once('socket', resolve));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  assert.equal((await sending).getStatus(), 409);
  // A socket that never closes keeps node from exiting: it spins in its cleanup for ever (a CI run hung on it).
  const outcome = await Promise.race([closed.then(() => 'closed'), sleep(5000).then(() => 'still open')]);
  assert.equal(outcome, 'closed', 'the refused request\'s socket never closed');
});

/** A server that answers every request 409 with CODE and HEADERS before reading its body; returns its port. */
async function refusingServer(t: TestContext, headers: Record<string, string>, code: string, onRequest = () => {}): Promise<number> {
  const server = http.createServer((req, res) => {
    onRequest();
    res.writeHead(409, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ error: { code, message: 'refused before the body was read', retryable: true } }));
    // As @hono/node-server does: read and discard what still comes, so the refusal is not a reset.
    req.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  t.after(() => server.closeAllConnections());
  return (server.address() as { port: number }).port;
}
