/**
 * A restore's own requests (the admin's catalog, the download) read an answer without a snapferry error as push's
 * requests do (client/http/answer.ts): a proxy's 502 while the server restarts is "the server behind it is down", not
 * "is --server the address of a snapferry server?", which sent a user checking an address that was right.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ServerApi } from '../../../client/http/api.ts';
import { fetchCatalog } from '../../../client/restore/http.ts';

test("a proxy's 502 to a restore's request says the server behind it is down, and that waiting helps", async (t) => {
  const proxy = http.createServer((_req, res) => {
    res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>');
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  t.after(() => proxy.close());
  const server = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const err = await fetchCatalog({ api: new ServerApi({ server }), headers: {}, client: 'alice' }, 'home').then(
    () => null,
    (e: unknown) => e as { code: string; message: string; retryable: boolean },
  );
  assert.ok(err !== null, 'the 502 was taken for an answer');
  assert.equal(err.code, 'upstream_down');
  assert.equal(err.retryable, true);
  assert.match(err.message, /the proxy in front of http:\/\/127\.0\.0\.1:\d+ answered 502: the snapferry server behind it is down/);
  assert.doesNotMatch(err.message, /is --server the address/);
});

test("a 500 the server says only its admin can mend (the archive's objects damaged) is not tried again", async (t) => {
  // The volume in the path (/v1/volumes/NAME/snapshots) picks the error.
  const codes: Record<string, string> = { damaged: 'archive_object_corrupt', newer: 'archive_format_unsupported', other: 'internal' };
  const server = http.createServer((req, res) => {
    const code = codes[new URL(req.url!, 'http://x').pathname.split('/')[3] ?? ''] ?? 'internal';
    res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code, message: `${code} here`, retryable: false } }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const api = new ServerApi({ server: url });
  const failure = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as { code: string; retryable: boolean });
  assert.deepEqual(await failure(fetchCatalog({ api, headers: {}, client: 'alice' }, 'damaged')).then((e) => [e?.code, e?.retryable]), ['archive_object_corrupt', false]);
  assert.deepEqual(await failure(api.snapshots('newer')).then((e) => [e?.code, e?.retryable]), ['archive_format_unsupported', false]);
  // Any other 5xx may heal (a restart, a bucket slow for a moment): tried again, whatever the body says.
  assert.deepEqual(await failure(api.snapshots('other')).then((e) => [e?.code, e?.retryable]), ['internal', true]);
});
