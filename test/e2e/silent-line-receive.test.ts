/**
 * Issue 16: a silence while the push waits for the server to receive what it uploaded, after which the line has
 * forgotten the connections open then (a NAT that lost its state). The push polls the server's JSON API meanwhile; a
 * poll into the silent line must give up after the stall timeout, and the push must learn once the line speaks, on a
 * new connection, that the server received the snapshot meanwhile.
 *
 * The server is made slow to receive as a stalled disk would make it: its `btrfs receive` is stopped (SIGSTOP)
 * mid-upload, so the upload completes into the spool while the receive waits, and let go (SIGCONT) during the
 * silence, so that it finishes where the push cannot see it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import { until } from './harness.ts';
import { assertArrived, assertPushFinishes, assertSentOnce, receiveOf, silenceFor, silentLineWorld, untilHeld } from './silent-line.ts';

test('a silence while the push waits for the receive: it finds the snapshot received once the line speaks', { ...rootOnly, timeout: 150_000 }, async (t) => {
  const world = await silentLineWorld(t, { seed: 'silent-receive', randomMB: 1 });
  const server = await world.serve();
  const before = await world.line.upstream();
  const push = world.push();
  await untilHeld(world, push, world.wire * 0.3);
  const receive = await until('the server\'s btrfs receive', async () => (await receiveOf(server.pid)) ?? undefined, 30_000, 20);
  process.kill(receive, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(receive, 'SIGCONT');
    } catch {
      // Gone already.
    }
  });

  await push.waitForStderr(/uploaded s1; waiting for the server/, 60_000);
  // The catalog records the upload's end a moment after the answer to it.
  await until('the server to record the upload complete', async () => (await world.transfer())?.state === 'receiving', 5000, 20);
  const silence = await silenceFor(world, 16_000, {
    forget: true,
    during: async () => {
      await sleep(4000);
      process.kill(receive, 'SIGCONT');
      await until('the server to receive s1 during the silence', async () => (await world.transfer())?.state === 'received', 10_000, 50);
    },
  });
  assert.equal(silence.heldAfter, world.wire);
  assert.doesNotMatch(push.stderr, /^received s1/m, 'the push could not have seen the receive finish during the silence');

  await assertPushFinishes(t, world, push, silence);
  assert.match(push.stderr, /^done: 1 snapshot\(s\) received by the server \(s1\)$/m);
  // However the push learnt of the receive (a poll, or asking again after the stall), it says so once.
  assert.equal(push.stderr.match(/^received s1/gm)?.length, 1, push.stderr);
  await assertArrived(world);
  // Nothing was uploading when the line fell silent: nothing needed sending again.
  assertSentOnce(t, world, before, await world.line.upstream(), 0);
});
