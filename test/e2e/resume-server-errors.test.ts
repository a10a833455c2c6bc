// A server that fails for a while (its answers 500: a store down, a record it cannot read, an nginx whose upstream
// is restarting) must not cost the upload: the client waits with its backoff and resumes the same upload, never
// begins a new one unless the server said the upload is gone. Real btrfs, real server, real sockets; the line is
// cut once (the chaos proxy) and, from the cut, an HTTP proxy answers the upload's HEADs and PATCHes with 500.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { UPLOADS_PATH } from '../../core/protocol.ts';
import { startChaosProxy } from '../chaos/chaos-proxy.ts';
import { startFaultHttpProxy } from '../chaos/fault-http-proxy.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

test('HEADs and PATCHes answered 500 for 4 s after a cut: the push waits, resumes the same upload, and says the server failed, not that the upload is gone', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 10, seed: 'server-errors' });
  const server = await pair.startServer();
  const faults = await startFaultHttpProxy({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
  t.after(() => faults.close());
  const line = await startChaosProxy({ target: { host: '127.0.0.1', port: faults.port } });
  t.after(() => line.close());
  line.setRate(8 * 1024 * 1024);
  const s1 = await pair.snapshot('s1');
  // A bare 500, as a proxy or a failing server answers a HEAD: a status and nothing else.
  const onUpload = (r: { method: string; path: string }) => (r.method === 'HEAD' || r.method === 'PATCH') && r.path.startsWith(`${UPLOADS_PATH}/`);
  line.onCut(() => faults.fail({ status: 500, when: onUpload }, 4000));
  line.cutAfter(4 * 1024 * 1024);
  const chunk = 256 * 1024;
  const report = recordingReporter();
  const { sent } = await push({ server: line.url, volume: 'v', snapshots: [s1], chunkSize: chunk, backoff: { baseMs: 200, maxMs: 1000 }, pollMs: 100, stallMs: 5000 }, report);
  const counts = faults.counts();
  t.diagnostic(`answers ${JSON.stringify(counts)}; notes:\n${report.notes.join('\n')}`);
  assert.equal(line.stats().cuts, 1);
  assert.ok((counts['HEAD answered 500'] ?? 0) >= 2, 'the fault was met, more than once');
  assert.equal(counts.POST, 1, 'one upload: none was begun again');
  assert.doesNotMatch(report.notes.join('\n'), /no longer has this upload/, 'a server error is not an upload gone');
  assert.match(report.notes.join('\n'), /answered 500/);
  const transfer = sent[0]!.transfer;
  assert.equal(transfer.state, 'received');
  // The stream once, plus one cut's loss (the frame in flight, socket buffers) and requests: nothing sent again.
  const crossed = line.stats().upstreamBytes;
  assert.ok(crossed < transfer.wireOffset + chunk + 512 * 1024 + 64 * 1024, `${crossed} bytes crossed for a ${transfer.wireOffset}-byte stream`);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});
