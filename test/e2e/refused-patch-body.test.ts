// A PATCH refused before its body was read (409 transfer_locked, 429 with Retry-After) must stop sending its body:
// on a slow line every byte after the answer is the line's time spent on nothing (client/http/stop-body-on-answer.ts).
// The client's own HTTP stack (createTransport) sends a body over a 1 MB/s line to a server that answers 409 at once
// and reads nothing. The first case checks the two things the client controls, not the bytes the line carried: those
// also depend on how much the kernels had taken before the answer came, which grows when the machine is busy and the
// answer late (CI saw 1.3-2 MB cross where 1 MB was allowed, most of it bytes the proxy's kernel had taken before
// the client's reset; the proxy now drops them, test/chaos/lane.ts).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startChaosProxy } from '../chaos/chaos-proxy.ts';
import { until } from '../chaos/peers.ts';
import { createTransport } from '../../client/http/transport.ts';
import { BODY_PIECE, patchBody } from '../../client/upload/patch-body.ts';

// More than the kernels take before the answer (the client's send buffer, up to 4 MiB by tcp_wmem, and the proxy's
// receive buffer): on a smaller body the stop has nothing left to stop.
const BODY = 32 * 1024 * 1024;
const RATE = 1024 * 1024;
// The answer's head goes out at once and its end this much later: while the client waits for the end the line
// drains, and a client that still fed its body would fill the room again (about HOLD_MS * RATE bytes).
const HOLD_MS = 400;

test('a PATCH answered 409 before its body was read stops sending the body, and the answer still reaches the client', { timeout: 60_000 }, async (t) => {
  let answered = 0;
  const port = await refusingServer(t, { 'retry-after': '3' }, 'transfer_locked', () => answered++, HOLD_MS);
  const line = await startChaosProxy({ target: { host: '127.0.0.1', port } });
  t.after(() => line.close());
  line.setRate(RATE);

  const transport = createTransport(`http://127.0.0.1:${line.port}`);
  t.after(() => transport.close());
  const req = transport.httpStack.createRequest('PATCH', `http://127.0.0.1:${line.port}/v1/uploads/x`);
  req.setHeader('Upload-Offset', '0');
  const sending = req.send(patchBody([Buffer.alloc(BODY, 7)]));
  const request = req.getUnderlyingObject() as http.ClientRequest;
  // Listened to after stopBodyOnAnswer's own listener, which send() added: what the client handed its socket then.
  const atHead = new Promise<number>((resolve) => request.once('response', () => resolve(request.socket!.bytesWritten)));
  const res = await sending;
  const handed = { atHead: await atHead, atEnd: request.socket!.bytesWritten };
  const crossedAtAnswer = line.stats().upstreamBytes;
  assert.equal(res.getStatus(), 409);
  assert.match(res.getBody(), /transfer_locked/);
  assert.equal(answered, 1);
  t.diagnostic(`the client's socket took ${handed.atHead} bytes by the answer's head, ${handed.atEnd} by its end`);
  assert.ok(handed.atHead < BODY / 2, `the kernels took ${handed.atHead} of ${BODY} bytes before the answer: make the body larger`);
  // One piece may still be on its way: tus-js-client pipes the body through its progress counter, which holds one.
  assert.ok(handed.atEnd - handed.atHead <= BODY_PIECE,
    `the client handed its socket ${handed.atEnd - handed.atHead} more bytes of the body after the answer's head`);

  // The reset drops what the client's kernel still holds (a FIN would follow all of it, at the line's pace); the
  // proxy sees it within a few of its ticks. Without it the connection stays open.
  await until('the connection to end after the answer', () => line.stats().live === 0, 3000);
  assert.equal(line.stats().clientResets, 1, 'the client ended the refused connection without a reset');
  t.diagnostic(`${line.stats().upstreamBytes - crossedAtAnswer} bytes crossed the line after the answer`);
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

/**
 * A server that answers every request 409 with CODE and HEADERS before reading its body, the answer's end `holdMs`
 * after its head; returns its port.
 */
async function refusingServer(
  t: TestContext, headers: Record<string, string>, code: string, onRequest = () => {}, holdMs = 0,
): Promise<number> {
  const server = http.createServer((req, res) => {
    onRequest();
    res.writeHead(409, { 'content-type': 'application/json', ...headers });
    res.flushHeaders();
    const answer = JSON.stringify({ error: { code, message: 'refused before the body was read', retryable: true } });
    setTimeout(() => res.end(answer), holdMs);
    // As @hono/node-server does: read and discard what still comes, so the refusal is not a reset.
    req.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  t.after(() => server.closeAllConnections());
  return (server.address() as { port: number }).port;
}
