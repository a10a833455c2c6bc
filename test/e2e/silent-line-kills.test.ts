/**
 * Issue 16: a silent line while ends die. The server's sockets destroyed during a silence (ss -K: the RSTs it sends
 * are lost in the silence, so the client never hears of it), and both ends killed with SIGKILL during a silence with
 * the client's state deleted. Each push ends with the snapshot received whole, and at most a frame sent twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import { RESUMED, assertArrived, assertPushFinishes, assertSentOnce, killClient, silenceFor, silentLineWorld, untilMidFrame } from './silent-line.ts';

const lineTest = { ...rootOnly, timeout: 150_000 };
/** Longer than the push's stall timeout and the server's idle timeout, so both fire within it. */
const SILENCE_MS = 16_000;

test('the server\'s sockets destroyed during a silence: the push resumes once the line speaks', lineTest, async (t) => {
  const world = await silentLineWorld(t, { seed: 'silent-kill-sockets', randomMB: 1 });
  const server = await world.serve();
  const before = await world.line.upstream();
  const push = world.push();
  await untilMidFrame(world, push, world.wire * 0.4);
  let killed = -1;
  const silence = await silenceFor(world, SILENCE_MS, {
    during: async () => {
      await sleep(1000);
      killed = await world.line.killSockets(server.port);
    },
  });
  t.diagnostic(`ss -K destroyed ${killed} socket(s); silent from ${silence.heldBefore} to ${silence.heldAfter} B of ${world.wire} held`);
  assert.ok(killed >= 1, 'the PATCH\'s connection was destroyed');
  assert.ok(silence.heldAfter >= silence.heldBefore, 'the server kept every verified frame');
  assert.ok(silence.interruptionsAfter >= 1, 'the server saw its PATCH end');
  assert.ok(server.running, `the server survived its sockets' destruction:\n${server.stderr}`);

  await assertPushFinishes(t, world, push, silence);
  assert.match(push.stderr, RESUMED);
  await assertArrived(world);
  assertSentOnce(t, world, before, await world.line.upstream(), 1);
});

test('both ends killed with SIGKILL during a silence, the client\'s state deleted: both restarted, the push resumes', lineTest, async (t) => {
  const world = await silentLineWorld(t, { seed: 'silent-kill-both', randomMB: 1 });
  const first = await world.serve();
  const before = await world.line.upstream();
  const push = world.push();
  const held = await untilMidFrame(world, push, world.wire * 0.4);
  const silence = await silenceFor(world, SILENCE_MS, {
    during: async () => {
      await sleep(1000);
      assert.equal((await first.kill9()).signal, 'SIGKILL');
      assert.ok(await first.groupGone(10_000), 'the server\'s btrfs receive ended with it');
      // All a client keeps is its HOME (a push keeps nothing there: the server is the truth), and it is gone.
      await killClient(world, push);
    },
  });
  // What reached the server of the frame in flight was written to its spool as it arrived (server/spool/tail-writes.ts).
  // Before, it was held in memory until its request ended, died with the server, and the push sent the frame again.
  const spooled = await world.spoolBytes();
  t.diagnostic(`both killed with ${held.wireEnd} of ${world.wire} B held; ${silence.heldAfter} B held when the line spoke again, and ${spooled - silence.heldAfter} B of the next frame`);
  assert.ok(silence.heldAfter >= held.wireEnd, 'the killed server kept every verified frame');
  assert.ok(spooled > silence.heldAfter, 'the killed server kept the part of the frame in flight that had reached it');

  await world.serve();
  const again = world.push();
  await assertPushFinishes(t, world, again, silence);
  assert.match(again.stderr, RESUMED);
  await assertArrived(world);
  assertSentOnce(t, world, before, await world.line.upstream(), 1, 2);
});

test('the client killed during a silence, the server left running: a new push takes the upload over once the line speaks', lineTest, async (t) => {
  const world = await silentLineWorld(t, { seed: 'silent-kill-client', randomMB: 1 });
  const server = await world.serve();
  const before = await world.line.upstream();
  const push = world.push();
  const held = await untilMidFrame(world, push, world.wire * 0.4);
  // The dead client's kernel resets its connections into the silence: the server never hears of it, and only its
  // own idle timeout can end the PATCH and let another push's session have the upload.
  const silence = await silenceFor(world, SILENCE_MS, {
    during: async () => {
      await sleep(1000);
      await killClient(world, push);
    },
  });
  t.diagnostic(`client killed with ${held.wireEnd} of ${world.wire} B held; ${silence.interruptionsAfter} interruption(s) noted by the server`);
  assert.ok(silence.interruptionsAfter >= 1, 'the server ended the dead client\'s PATCH on its own');
  assert.ok(server.running);

  const again = world.push();
  await assertPushFinishes(t, world, again, silence);
  assert.match(again.stderr, RESUMED);
  await assertArrived(world);
  assertSentOnce(t, world, before, await world.line.upstream(), 1, 2);
});
