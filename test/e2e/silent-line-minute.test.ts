/**
 * Issue 16: a line that goes silent for a minute mid-upload (no RST, no FIN) and comes back having forgotten the
 * connection, as a NAT that lost its state, must not hang the push. The push gives up on the silent request after
 * its stall timeout and resumes from the server's offset on a new connection once the line speaks; the server ends
 * the silent request body after its idle timeout, keeping every verified frame. See silent-line.ts for the world
 * these tests build.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootOnly } from '../fixtures/btrfs.ts';
import { IDLE_SECONDS, RESUMED, assertArrived, assertPushFinishes, assertSentOnce, silenceFor, silentLineWorld, untilMidFrame } from './silent-line.ts';

test('a minute of silence mid-upload, the connection forgotten by the line: the push resumes from the server\'s offset and finishes', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const world = await silentLineWorld(t, { seed: 'silent-minute', randomMB: 2 });
  await world.serve();
  const before = await world.line.upstream();
  const push = world.push();
  await untilMidFrame(world, push, world.wire * 0.4);
  const silence = await silenceFor(world, 60_000, { forget: true });
  t.diagnostic(`silent from ${silence.heldBefore} to ${silence.heldAfter} B of ${world.wire} held; ${silence.interruptionsAfter} interruption(s) noted`);
  assert.ok(silence.heldAfter >= silence.heldBefore, 'the server kept every verified frame');
  // The server's idle timeout ended the silent PATCH long before the minute was over, and said so.
  assert.ok(silence.interruptionsAfter >= 1, `the server did not end the silent request within 60 s (--idle-timeout ${IDLE_SECONDS})`);

  await assertPushFinishes(t, world, push, silence);
  assert.match(push.stderr, RESUMED);
  await assertArrived(world);
  assertSentOnce(t, world, before, await world.line.upstream(), 1);
});
