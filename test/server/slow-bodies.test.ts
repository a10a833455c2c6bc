/** The body rate floor, on an injected clock: what it cuts, when, and the pauses it must never punish. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bodyFloor, DEFAULT_BODY_RATE_WINDOW_MS, DEFAULT_MIN_BODY_RATE, RateFloor } from '../../server/slow-bodies.ts';

const floor = { minBytesPerSecond: 256, windowMs: 120_000 };

/** Feeds `rule` a body that brings `rate(t)` bytes per second, sampled every `tickMs`; the time it was cut, or null. */
function run(rule: RateFloor, rate: (t: number) => number, untilMs: number, tickMs = 12_000): number | null {
  let bytes = 0;
  for (let t = 0; t <= untilMs; t += 1000) {
    bytes += rate(t);
    if (t > 0 && t % tickMs === 0 && rule.tooSlow(t, bytes)) return t;
  }
  return null;
}

test('a body under the floor is cut once it has run a whole window, not before', () => {
  const cutAt = run(new RateFloor(floor, 0), () => 100, 600_000);
  assert.equal(cutAt, 120_000);
  // Nothing at all: the same.
  assert.equal(run(new RateFloor(floor, 0), () => 0, 600_000), 120_000);
});

test('a burst then a trickle is cut one window after the burst', () => {
  const cutAt = run(new RateFloor(floor, 0), (t) => (t < 60_000 ? 1_000_000 : 10), 900_000);
  assert.ok(cutAt !== null && cutAt >= 180_000 && cutAt <= 192_000, String(cutAt));
});

test('a slow real line is never cut: 48 kbit/s, or twice the floor, with pauses just under the idle timeout', () => {
  const idleMs = 60_000;
  const rule = () => new RateFloor({ ...floor, windowMs: 2 * idleMs }, 0);
  for (const speed of [6000, 2 * floor.minBytesPerSecond]) {
    // Pauses of 59 s between 61 s of sending, whichever way they fall against the ticks.
    for (const phase of [0, 7_000, 30_000, 59_000, 100_000]) {
      const rate = (t: number) => ((t + phase) % 120_000 < idleMs - 1000 ? 0 : speed);
      assert.equal(run(rule(), rate, 3_600_000, 5_000), null, `${speed} B/s, phase ${phase}`);
    }
  }
  // Exactly at the floor, steadily: not cut.
  assert.equal(run(new RateFloor(floor, 0), () => floor.minBytesPerSecond, 3_600_000), null);
  // A little under twice the floor with the same pauses is cut: the test above is at the edge, not far from it.
  assert.notEqual(run(rule(), (t) => (t % 120_000 < idleMs - 1000 ? 0 : 480), 3_600_000, 5_000), null);
});

test('the window defaults to 2 minutes, or twice a longer idle timeout, and is never shorter than twice it', () => {
  assert.deepEqual(bodyFloor({}, 60_000), { minBytesPerSecond: DEFAULT_MIN_BODY_RATE, windowMs: DEFAULT_BODY_RATE_WINDOW_MS });
  assert.deepEqual(bodyFloor({}, 300_000), { minBytesPerSecond: DEFAULT_MIN_BODY_RATE, windowMs: 600_000 });
  assert.deepEqual(bodyFloor({ minBytesPerSecond: 100, windowMs: 3000 }, 1000), { minBytesPerSecond: 100, windowMs: 3000 });
  assert.throws(() => bodyFloor({ windowMs: 90_000 }, 60_000), /must be at least twice idleTimeout \(60s\)/);
  assert.throws(() => bodyFloor({ minBytesPerSecond: 0 }, 60_000), /at least 1 byte per second/);
});

test('time the server held the body back does not count: the window starts again where the hold ends', () => {
  // Fast, then five minutes in which the server read nothing (ticks every 12 s see it holding), then fast again.
  const rule = new RateFloor(floor, 0);
  let bytes = 0;
  for (let t = 12_000; t <= 60_000; t += 12_000) assert.equal(rule.tooSlow(t, (bytes += 1_000_000)), false);
  for (let t = 72_000; t <= 360_000; t += 12_000) rule.heldUntil(t, bytes);
  assert.equal(rule.tooSlow(372_000, (bytes += 50_000)), false, 'not cut for the server\'s own five minutes');
  // A body that, let go, trickles is cut one window after the hold ended, not earlier.
  let cutAt: number | null = null;
  for (let t = 384_000; t <= 900_000 && cutAt === null; t += 12_000) if (rule.tooSlow(t, (bytes += 10))) cutAt = t;
  assert.equal(cutAt, 360_000 + floor.windowMs + 12_000);
  // Without the hold the same body is cut at once when it ends.
  const unheld = new RateFloor(floor, 0);
  assert.equal(unheld.tooSlow(60_000, 5_000_000), false);
  assert.equal(unheld.tooSlow(372_000, 5_050_000), true);
});
