import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CutSchedule } from './cut-schedule.ts';
import type { RandomCuts } from './cut-schedule.ts';
import { RateLimiter } from './rate-limiter.ts';
import { ValidationError } from '../../core/errors.ts';

function positions(schedule: CutSchedule, count: number): Array<number | null> {
  const out: Array<number | null> = [];
  for (let i = 0; i < count; i++) {
    out.push(schedule.nextAt);
    schedule.advance();
  }
  return out;
}

test('cutAfter is one cut, N bytes past the current position', () => {
  const s = new CutSchedule();
  s.after(1000, 500);
  assert.equal(s.kind, 'after');
  assert.deepEqual(positions(s, 3), [1500, null, null]);
  assert.equal(s.kind, null);
});

test('cutEvery repeats every N bytes until cleared', () => {
  const s = new CutSchedule();
  s.every(7, 100);
  assert.deepEqual(positions(s, 3), [107, 207, 307]);
  s.clear();
  assert.equal(s.nextAt, null);
});

test('random cuts follow the seed, respect the minimum, and average out near the mean', () => {
  const drawn = (options: RandomCuts): number[] => {
    const s = new CutSchedule();
    s.random(0, options);
    return positions(s, 2000) as number[];
  };
  const a = drawn({ meanBytes: 10_000, seed: 'x', minBytes: 500 });
  assert.deepEqual(drawn({ meanBytes: 10_000, seed: 'x', minBytes: 500 }), a);
  assert.notDeepEqual(drawn({ meanBytes: 10_000, seed: 'y', minBytes: 500 }), a);
  const gaps = a.map((p, i) => p - (i === 0 ? 0 : (a[i - 1] as number)));
  assert.ok(gaps.every((g) => g >= 500), 'a gap below minBytes');
  const mean = (a.at(-1) as number) / a.length;
  assert.ok(mean > 9_000 && mean < 11_500, `mean gap ${mean}`);
  // Exponential gaps: a fair share are short (below half the mean), which is what catches edge cases.
  assert.ok(gaps.filter((g) => g < 5_000).length > 600);
});

test('a byte count that is not a whole positive number is refused with a clear error', () => {
  const s = new CutSchedule();
  for (const bad of [0, -1, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => s.every(0, bad), (err: unknown) => err instanceof ValidationError && /cutEvery/.test(err.message));
  }
  assert.throws(() => s.random(0, { meanBytes: 0, seed: 1 }), ValidationError);
  assert.throws(() => new RateLimiter().setRate(0), ValidationError);
  assert.throws(() => new RateLimiter().setRate(-5), ValidationError);
});
