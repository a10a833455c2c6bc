/** LiveReceives' shutdown (server/live-receives.ts close): nothing starts after it, and no retry delay holds it up. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { LiveReceives, type LiveReceiveHooks } from '../../server/live-receives.ts';
import { ServerLayout } from '../../server/layout.ts';
import { silentLogger } from '../../server/log.ts';
import { progressFromRecord } from '../../server/spool/spool.ts';

/** Hooks that say every upload holds verified frames, and write down each receive asked for. */
function recordingHooks(): LiveReceiveHooks & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    jobFor: (id) => {
      asked.push(id);
      return null;
    },
    progressOf: () => Promise.resolve({ ...progressFromRecord(null), wireOffset: 4096, framesVerified: 1 }),
    received: () => Promise.resolve(),
    failed: () => Promise.resolve(),
  };
}

test('a close cuts short a receive waiting to start again, and starts nothing', { timeout: 20_000 }, async () => {
  const hooks = recordingHooks();
  const receives = new LiveReceives(new ServerLayout(os.tmpdir()), hooks, silentLogger());
  // A receive that failed for the server's own reasons waits up to 5 minutes before it runs again.
  receives.restartLater('a'.repeat(32), 5 * 60_000);
  const started = Date.now();
  await receives.close();
  assert.ok(Date.now() - started < 5000, `the close waited ${Date.now() - started} ms for a retry's delay`);
  assert.deepEqual(hooks.asked, [], 'no receive is started after the close');
});

test('without a close, the delayed start does ask for its receive', { timeout: 20_000 }, async () => {
  const hooks = recordingHooks();
  const receives = new LiveReceives(new ServerLayout(os.tmpdir()), hooks, silentLogger());
  receives.restartLater('b'.repeat(32), 50);
  // The delay's timer does not hold the process open (a server's other work does): this test's timer does.
  const alive = setTimeout(() => undefined, 5000);
  await receives.idle();
  clearTimeout(alive);
  assert.deepEqual(hooks.asked, ['b'.repeat(32)]);
});
