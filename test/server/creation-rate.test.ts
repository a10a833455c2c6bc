/** The per-client creation rate (server/creation-rate.ts) on a fake clock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CreationRate } from '../../server/creation-rate.ts';

function rate(perMinute: number, burst: number) {
  const clock = { now: 0 };
  return { clock, r: new CreationRate({ creationsPerMinute: perMinute, creationBurst: burst }, () => clock.now) };
}

test('a burst goes through at once; the next waits for the refill, and says how long', () => {
  const { clock, r } = rate(6, 3);
  assert.deepEqual([r.take('a'), r.take('a'), r.take('a')], [0, 0, 0]);
  assert.equal(r.take('a'), 10_000);
  clock.now = 4000;
  assert.equal(r.take('a'), 6000, 'a refused try takes nothing from the bucket');
  clock.now = 10_000;
  assert.equal(r.take('a'), 0);
  assert.equal(r.take('a'), 10_000);
});

test('each client has its own bucket', () => {
  const { r } = rate(1, 1);
  assert.equal(r.take('a'), 0);
  assert.ok(r.take('a') > 0);
  assert.equal(r.take('b'), 0);
});

test('a bucket refills up to its burst, never beyond', () => {
  const { clock, r } = rate(60, 2);
  r.take('a');
  clock.now = 3_600_000;
  assert.deepEqual([r.take('a'), r.take('a')], [0, 0]);
  assert.equal(r.take('a'), 1000);
});
