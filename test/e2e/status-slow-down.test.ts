/**
 * `snapferry status` behind a proxy that limits connections (nginx limit_conn answers 429, with no Retry-After and
 * an HTML page): status waits and asks again, as its message says, and says each wait; when the proxy never lets it
 * through, it stops with the proxy's words and exit 75, without claiming to wait.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { forwardingProxy } from '../fixtures/forwarding-proxy.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { createPair } from './harness.ts';
import { SNAPFERRY_BIN } from './processes.ts';

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

const snapferry = (args: string[]) => execa('node', [SNAPFERRY_BIN, ...args], { reject: false, timeout: 120_000, env: { SNAPFERRY_TOKEN: '' } });

/** Answers the first `refusals` requests 429 (the first with Retry-After: 1), then forwards to `upstream`. */
async function limitingProxy(t: AfterHook, upstream: number, refusals: number): Promise<{ url: string; refused: () => number }> {
  let refused = 0;
  const url = await forwardingProxy(t, () => upstream, (req, res) => {
    if (refused >= refusals) return req.url!;
    res.writeHead(429, { 'content-type': 'text/html', ...(refused === 0 ? { 'retry-after': '1' } : {}) }).end('<html><body>429 Too Many Requests</body></html>');
    refused++;
    return null;
  });
  return { url, refused: () => refused };
}

test('status told to slow down (429) waits, honouring Retry-After, and shows the server', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  const proxy = await limitingProxy(t, Number(new URL(server.url).port), 2);
  const started = Date.now();
  const r = await snapferry(['status', '--server', proxy.url]);
  assert.equal(r.exitCode, EXIT.ok, r.stderr);
  assert.ok(Date.now() - started >= 1000, 'it waited out the Retry-After of 1 s');
  assert.equal(proxy.refused(), 2);
  assert.match(r.stderr, /asks to slow down \(429\): too many requests or connections at once; trying again in \d+\.\d s/);
  assert.match(r.stdout, /VOLUME|no volumes/i);
});

test('status refused (429) every time stops with exit 75 and the proxy\'s words, not "waiting"', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  const proxy = await limitingProxy(t, Number(new URL(server.url).port), Infinity);
  const r = await snapferry(['status', '--server', proxy.url]);
  assert.equal(r.exitCode, EXIT.temporary, r.stderr);
  const last = r.stderr.trim().split('\n').at(-1)!;
  assert.match(last, /asks to slow down \(429\): too many requests or connections at once$/);
  assert.ok(proxy.refused() > 1, 'it asked again before it gave up');
});
