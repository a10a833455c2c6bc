/**
 * A server published under a path prefix that the proxy strips (nginx `location /sf/ { proxy_pass http://up/; }`,
 * README: publicUrl with a path): every request the client makes, the tus creation included, carries the prefix.
 * The proxy here is a few lines of node, so the test needs no TLS; what it strips is what nginx would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { UPLOADS_PATH } from '../../core/protocol.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

/** Forwards `/sf/...` to the upstream as `/...`; anything else is a 404, as nginx answers outside its location. */
async function prefixProxy(t: AfterHook, prefix: string): Promise<{ url: string; seen: string[]; upstream(port: number): void }> {
  let upstreamPort = 0;
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (!req.url!.startsWith(`${prefix}/`)) {
      res.writeHead(404).end('not under the prefix');
      return;
    }
    const forwarded = http.request(
      { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url!.slice(prefix.length), headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.on('error', () => res.destroy());
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  t.after(() => server.closeAllConnections());
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}${prefix}`, seen, upstream: (p) => (upstreamPort = p) };
}

test('a push through a proxy that strips a path prefix creates its upload under the prefix and arrives', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const proxy = await prefixProxy(t, '/sf');
  const server = await pair.startServer({ publicUrl: proxy.url });
  proxy.upstream(Number(new URL(server.url).port));
  const s1 = await pair.snapshot('s1');
  const result = await push({ server: proxy.url, volume: 'home', snapshots: [s1], chunkSize: 256 * 1024, retries: 1, backoff: { baseMs: 100, maxMs: 200 }, pollMs: 100 }, recordingReporter());
  assert.equal(result.sent[0]!.transfer.state, 'received');
  assert.equal(result.sent[0]!.transfer.interruptions, 0);
  await assertReceived(s1, pair.receivedPath('home', 's1'));
  assert.ok(proxy.seen.includes(`POST /sf${UPLOADS_PATH}/`), `the creation went under the prefix: ${proxy.seen.join(', ')}`);
  assert.ok(proxy.seen.every((r) => r.split(' ')[1]!.startsWith('/sf/')), `every request under the prefix: ${proxy.seen.join(', ')}`);
});
