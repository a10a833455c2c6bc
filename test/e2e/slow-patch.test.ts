/**
 * One PATCH that lasts longer than five minutes, as every PATCH does on a 1 Mbit/s line: Node's HTTP server would
 * answer 408 after its default 300 s request timeout. Slow by nature (about 5.5 minutes); it runs beside the other
 * test files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { startChaosProxy } from '../chaos/chaos-proxy.ts';
import { assertReceived, createPair, framedLength, recordingReporter } from './harness.ts';

const SECONDS = 320;

test(`a single PATCH lasting ${SECONDS} s on a slow link succeeds`, rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 3 });
  const server = await pair.startServer();
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: Number(new URL(server.url).port) } });
  t.after(() => proxy.close());
  const s1 = await pair.snapshot('s1');
  // The framed length sets the rate that makes the push last SECONDS.
  const wire = await framedLength(s1, 256 * 1024);
  proxy.setRate(Math.floor(wire / SECONDS));

  const started = Date.now();
  const { sent } = await push(
    { server: proxy.url, volume: 'v', snapshots: [s1], chunkSize: 256 * 1024, patchBytes: wire + 1, compress: 3, retries: 0 },
    recordingReporter(),
  );
  const elapsed = (Date.now() - started) / 1000;
  t.diagnostic(`${wire} bytes in one PATCH over ${elapsed.toFixed(0)} s`);
  assert.ok(elapsed > 300, `the PATCH lasted ${elapsed} s`);
  assert.equal(sent[0]!.transfer.interruptions, 0, 'never cut');
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});
