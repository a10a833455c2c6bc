/**
 * The idle timeout and the body rate floor end a PATCH whose client stopped sending. Neither may end one that the
 * server itself stopped reading: the store waits for a receive that holds frames it has not taken (up to 2 s, a
 * slow disk under btrfs receive), and a loaded machine stalls its own writes. That wait is the server's; a client
 * cut for it sends the frame again, and on a machine always that slow, never gets anywhere.
 *
 * The server is made to hold the body as a slow disk makes it: its `btrfs receive` is stopped (SIGSTOP) mid-upload,
 * so that the receive's memory fills and the store waits for it, longer than the idle timeout and the floor's window.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootOnly } from '../fixtures/btrfs.ts';
import { receivePidIn, until } from '../fixtures/receive-exit.ts';
import { patch, restartableRoot, uploadWithReceiveRunning } from './hostile-client.ts';

test('a PATCH body the server holds back (its receive stalled) is not ended by the idle timeout nor the rate floor', { ...rootOnly, timeout: 120_000 }, async (t) => {
  // Let go first among the after hooks: a server closing waits for its stopped receive.
  let frozen: number | null = null;
  t.after(() => {
    if (frozen !== null) process.kill(frozen, 'SIGCONT');
  });
  // An idle timeout of 0.5 s and a floor over a 1 s window far above what a stalled server reads: either would end
  // the body the store holds back for 2 s, were it counting the server's wait against the client.
  const { root, start } = await restartableRoot(t, { idleTimeoutMs: 500, connections: { minBodyBytesPerSecond: 64 * 1024, bodyRateWindowMs: 1000 } });
  const server = await start();
  // About 12 MB of incompressible data: more than the 8 MiB a receive holds in memory before the store waits for it.
  const { id, framed, head, volumeDir } = await uploadWithReceiveRunning(server, root, { volume: 'held', pieces: 250 });
  frozen = await receivePidIn(volumeDir);
  assert.notEqual(frozen, null);
  process.kill(frozen!, 'SIGSTOP');

  const rest = await patch(server.url, id, head, framed.subarray(head), { 'Upload-Length': String(framed.length) });
  assert.equal(rest.status, 204, `the PATCH the server held back was ended: ${rest.status} ${rest.text}`);
  assert.equal(rest.headers.get('upload-offset'), String(framed.length));

  process.kill(frozen!, 'SIGCONT');
  frozen = null;
  await until('the snapshot to be received', async () => {
    await server.service.idle();
    return server.service.transferRecord(id)?.state === 'received';
  });
});
