/** The one rule for polling the server about work it is still doing (client/http/poll-schedule.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pollDelay } from '../../../client/http/poll-schedule.ts';

test('polls come at the early period while the wait is young, then at the late one, never faster than a millisecond', () => {
  const schedule = { earlyMs: 1000, earlyForMs: 10_000, lateMs: 5000 };
  assert.equal(pollDelay(0, schedule), 1000);
  assert.equal(pollDelay(9_999, schedule), 1000);
  assert.equal(pollDelay(10_000, schedule), 5000);
  assert.equal(pollDelay(3_600_000, schedule), 5000);
  // A fraction of a millisecond (a period divided down) is rounded, and a zero period is no busy loop.
  assert.equal(pollDelay(0, { earlyMs: 0.4, earlyForMs: 1, lateMs: 0 }), 1);
  assert.equal(pollDelay(5, { earlyMs: 0.4, earlyForMs: 1, lateMs: 0 }), 1);
  assert.equal(pollDelay(0, { earlyMs: 50.6, earlyForMs: 1, lateMs: 0 }), 51);
});
