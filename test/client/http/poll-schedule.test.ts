/** The one rule for polling the server about work it is still doing, and each wait's schedule (client/http/poll-schedule.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EARLY_POLLS_FASTER, digestSchedule, pollDelay, receiveSchedule } from '../../../client/http/poll-schedule.ts';

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

test('the receive is polled more often in the first second after the upload, then at the poll period', () => {
  // Where a receive that ends 170 ms after the upload is learnt of: the first poll at or after it.
  const learnt = (endsAtMs: number, pollMs: number) => {
    let at = 0;
    while (at < endsAtMs) at += pollDelay(at, receiveSchedule(pollMs));
    return at;
  };
  assert.equal(pollDelay(0, receiveSchedule(250)), 250 / EARLY_POLLS_FASTER);
  assert.equal(pollDelay(999, receiveSchedule(250)), 50);
  assert.equal(pollDelay(1000, receiveSchedule(250)), 250);
  assert.equal(pollDelay(60_000, receiveSchedule(250)), 250);
  assert.equal(learnt(170, 250), 200);
  // Never more than a poll period late, early or late in the wait; never a busy loop, whatever the period.
  for (const ends of [1, 170, 250, 999, 1000, 1001, 4321]) assert.ok(learnt(ends, 250) - ends < 250, `ends at ${ends}`);
  assert.equal(pollDelay(0, receiveSchedule(1)), 1);
});

test("verify polls the server's digest every period for ten periods, then every five", () => {
  assert.equal(pollDelay(0, digestSchedule(1000)), 1000);
  assert.equal(pollDelay(9_999, digestSchedule(1000)), 1000);
  assert.equal(pollDelay(10_000, digestSchedule(1000)), 5000);
});
