/** --limit-rate on a real push: the upload never goes faster than asked, on a link that could go much faster. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { startChaosProxy } from '../chaos/chaos-proxy.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

test('a push with limitRate keeps its upload at or under the rate', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 6, seed: 'limit-rate' });
  const server = await pair.startServer();
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: Number(new URL(server.url).port) } });
  t.after(() => proxy.close());
  const s1 = await pair.snapshot('s1');
  const rate = 1024 * 1024;
  const report = recordingReporter();
  let uploadedAt = 0;
  let uploaded = 0;
  report.waiting = () => {
    uploadedAt = performance.now();
    uploaded = proxy.stats().upstreamBytes;
  };
  const started = performance.now();
  await push({ server: proxy.url, volume: 'v', snapshots: [s1], limitRate: rate }, report);
  const seconds = (uploadedAt - started) / 1000;
  const measured = uploaded / seconds;
  t.diagnostic(`${uploaded} bytes in ${seconds.toFixed(2)} s: ${(measured / 1024).toFixed(0)} KiB/s against a limit of ${rate / 1024} KiB/s`);
  assert.ok(uploaded > 3 * rate, 'enough bytes for the limit to matter');
  // The bucket starts with a quarter second of credit; HTTP headers and the listing are not throttled (a few KB).
  assert.ok(uploaded <= rate * seconds + rate / 4 + 64 * 1024, `${measured.toFixed(0)} B/s is over the limit`);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});
