/**
 * A server published under a path prefix that the proxy strips (nginx `location /sf/ { proxy_pass http://up/; }`,
 * README: publicUrl with a path): every request the client makes, the tus creation included, carries the prefix.
 * The proxy here is a few lines of node, so the test needs no TLS; what it strips is what nginx would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootOnly } from '../fixtures/btrfs.ts';
import { forwardingProxy } from '../fixtures/forwarding-proxy.ts';
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
  const url = await forwardingProxy(t, () => upstreamPort, (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.url!.startsWith(`${prefix}/`)) return req.url!.slice(prefix.length);
    res.writeHead(404).end('not under the prefix');
    return null;
  });
  return { url: `${url}${prefix}`, seen, upstream: (p) => (upstreamPort = p) };
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
