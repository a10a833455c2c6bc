// The pure arithmetic of the progress line, on a fake clock: rate over a sliding window, an earlier run's bytes, ETA, durations, throttle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EarlierRun, Every, RateWindow, etaSeconds, formatDuration } from '../../../client/progress/math.ts';

/** Feeds `w` a steady `bytesPerSecond` from `from` ms for `forMs`, every `stepMs`; returns the end time and position. */
function steady(w: RateWindow, from: { t: number; position: number }, bytesPerSecond: number, forMs: number, stepMs = 100) {
  let { t, position } = from;
  for (let elapsed = 0; elapsed < forMs; elapsed += stepMs) {
    t += stepMs;
    position += (bytesPerSecond * stepMs) / 1000;
    w.observe(t, position);
  }
  return { t, position };
}

test('a rate needs a little history, then is the steady rate', () => {
  const w = new RateWindow(15_000, 2_000);
  w.restartAt(0, 0);
  assert.equal(w.rate(0), null);
  const at = steady(w, { t: 0, position: 0 }, 100_000, 1_500);
  assert.equal(w.rate(at.t), null, 'under 2 s of history');
  const later = steady(w, at, 100_000, 3_000);
  assert.ok(Math.abs(w.rate(later.t)! - 100_000) < 1, String(w.rate(later.t)));
});

test('the rate follows the last window, not the average since the start', () => {
  const w = new RateWindow(15_000, 2_000);
  w.restartAt(0, 0);
  let at = steady(w, { t: 0, position: 0 }, 1_000_000, 60_000);
  at = steady(w, at, 100_000, 20_000);
  const rate = w.rate(at.t)!;
  // Since the start it would be (60 MB + 2 MB) / 80 s = 775 kB/s.
  assert.ok(Math.abs(rate - 100_000) < 100_000 * 0.05, `${rate} B/s`);
  assert.ok(w.sampleCount <= (2 * 15_000) / 250 + 3, `${w.sampleCount} samples held`);
});

test("a resumed upload's prefix does not count, and a step back (a retry) is not negative progress", () => {
  const w = new RateWindow(15_000, 2_000);
  w.restartAt(0, 5_000_000_000);
  w.observe(1_000, 5_000_100_000);
  w.observe(2_000, 5_000_050_000); // the retry resends from the server's offset
  w.observe(3_000, 5_000_150_000);
  // 100 kB, then 100 kB again: 200 kB moved in 3 s.
  assert.ok(Math.abs(w.rate(3_000)! - 200_000 / 3) < 1, String(w.rate(3_000)));
});

test('the rate decays while nothing moves (a cut link), so the ETA grows instead of freezing', () => {
  const w = new RateWindow(15_000, 2_000);
  w.restartAt(0, 0);
  const at = steady(w, { t: 0, position: 0 }, 100_000, 15_000);
  const before = w.rate(at.t)!;
  const after = w.rate(at.t + 10_000)!;
  assert.ok(after < before * 0.5, `${after} after a 10 s stall, ${before} before`);
  assert.equal(w.rate(at.t + 20_000), 0);
});

test('ETA: remaining over rate; unknown when either is', () => {
  assert.equal(etaSeconds(1_000_000, 100_000), 10);
  assert.equal(etaSeconds(null, 100_000), null);
  assert.equal(etaSeconds(1_000_000, null), null);
  assert.equal(etaSeconds(1_000_000, 0), null);
  assert.equal(etaSeconds(-5, 100), 0, 'past the estimate: nothing left, not negative');
});

test('durations read in two units at most', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(44.6), '45s');
  assert.equal(formatDuration(632), '10m32s');
  assert.equal(formatDuration(3600 * 3 + 5 * 60 + 59), '3h05m');
  assert.equal(formatDuration(86_400 * 2 + 3600 * 4 + 120), '2d04h');
  assert.equal(formatDuration(-3), '0s');
});

test('Every lets one event through per period', () => {
  const every = new Every(250);
  const passed = [0, 100, 249, 250, 400, 501, 502].filter((t) => every.pass(t));
  assert.deepEqual(passed, [0, 250, 501]);
  every.restart(1_000);
  assert.equal(every.pass(1_100), false);
  assert.equal(every.pass(1_250), true);
});

test("an earlier run's bytes are where this run's first attempt began, never more than there are now", () => {
  const before = new EarlierRun();
  assert.equal(before.of(500), 0, 'before any attempt');
  before.begin(2_000);
  before.begin(2_400);
  assert.equal(before.of(3_000), 2_000, "a later attempt resumes from this run's own bytes");
  assert.equal(before.of(700), 700, 'a later attempt that started lower');
});
