/**
 * The client honours the server's Retry-After (RFC 9110 section 10.2.3) against a real server over a real socket:
 * a push refused with 429 too_many_creations waits what the server asked, then succeeds, instead of coming back
 * after its own short delays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

test('a push refused with 429 and Retry-After waits at least that long, once, then succeeds', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  // One creation at once, then one every 15 s: the second push's creation is refused with Retry-After ~15.
  const server = await pair.startServer({ limits: { creationBurst: 1, creationsPerMinute: 4 } });
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'home', snapshots: [s1] }, recordingReporter());
  const firstCreatedAt = Date.now();

  const s2 = await pair.snapshot('s2');
  const report = recordingReporter();
  // One retry allowed: only a client that waits out the Retry-After can succeed with it. Its own backoff (1 s, and
  // tus-js-client's 0, 1, 3 s within an upload) comes back about 10 s early and is refused again.
  const result = await push({ server: server.url, volume: 'home', snapshots: [s2], retries: 1 }, report);
  const elapsedSinceFirst = Date.now() - firstCreatedAt;

  assert.deepEqual(result.sent.map((s) => s.snapshot), ['s2']);
  await assertReceived(s2, pair.receivedPath('home', 's2'));
  const waits = report.notes.filter((n) => /too_many_creations/.test(n));
  assert.equal(waits.length, 1, `refused once, then waited: ${JSON.stringify(report.notes)}`);
  const m = /asks to wait (\d+) s.*trying again in ([\d.]+) s/.exec(waits[0]!);
  assert.ok(m, `the note says the server asked for a wait, and how long the client waits: ${waits[0]}`);
  const [asked, waited] = [Number(m[1]), Number(m[2])];
  assert.ok(asked >= 10 && asked <= 15, `Retry-After ${asked} s`);
  assert.ok(waited >= asked, `waited ${waited} s, at least the ${asked} s asked`);
  assert.ok(elapsedSinceFirst >= 14_000, `the creation came no earlier than the server allowed (${elapsedSinceFirst} ms)`);
});
