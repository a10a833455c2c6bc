/**
 * A request of the JSON API that the user stops (Ctrl-C, the command's signal) is said as interrupted, with the exit
 * code of an interruption: `run`'s summary said "prune failed: cannot reach http://…: This operation was aborted".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ServerApi } from '../../../client/http/api.ts';
import { EXIT, exitCodeFor } from '../../../client/exit-codes.ts';

test('a request stopped by the command\'s signal is "interrupted" (cancelled, exit 130), not an unreachable server', async (t) => {
  // A server that takes the request and never answers, as one would while the user presses Ctrl-C.
  const server = http.createServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  t.after(() => server.closeAllConnections());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const interrupt = new AbortController();
  const api = new ServerApi({ server: url, signal: interrupt.signal });
  setTimeout(() => interrupt.abort(), 100);
  await assert.rejects(api.status(), (err: Error & { code?: string; retryable?: boolean }) => {
    assert.equal(err.code, 'cancelled', err.message);
    assert.equal(err.retryable, false);
    assert.equal(err.message, `interrupted before ${url} answered GET /v1/status`);
    assert.equal(exitCodeFor(err), EXIT.interrupted);
    return true;
  });
});

test('a release is what a stopped push still says: the stop does not cancel it', async (t) => {
  const released: string[] = [];
  const server = http.createServer((req, res) => {
    released.push(`${req.method} ${req.url}`);
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'transfer_unknown', message: 'no such transfer' } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const interrupt = new AbortController();
  interrupt.abort();
  const api = new ServerApi({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, signal: interrupt.signal });
  await assert.rejects(api.status(), { code: 'cancelled' });
  // The server's answer, not the stop's: the request went out.
  await assert.rejects(api.release('abc', 5000), (err: Error & { code?: string }) => err.code !== 'cancelled');
  assert.deepEqual(released, ['POST /v1/transfers/abc/release']);
});
