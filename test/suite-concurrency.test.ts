import assert from 'node:assert/strict';
import test from 'node:test';
import { testConcurrency } from './suite-concurrency.ts';

test('SNAPFERRY_TEST_CONCURRENCY: unset or empty is the default; a positive integer is taken', () => {
  assert.equal(testConcurrency(undefined, 3), 3);
  assert.equal(testConcurrency('', 3), 3);
  assert.equal(testConcurrency('1', 3), 1);
  assert.equal(testConcurrency('12', 3), 12);
});

test('SNAPFERRY_TEST_CONCURRENCY: anything but a positive integer is refused, naming the variable and what it must be', () => {
  for (const raw of ['three', 'NaN', '0', '-2', '2.5', '2x', ' 2', '0x10', '1e1', 'Infinity']) {
    assert.throws(
      () => testConcurrency(raw, 3),
      new RegExp(`^Error: SNAPFERRY_TEST_CONCURRENCY is ${JSON.stringify(raw).replace(/[.+]/g, '\\$&')}: it must be a positive integer`),
      raw,
    );
  }
});
