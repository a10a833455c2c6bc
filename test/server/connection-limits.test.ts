/** The socket budget: caps fitted under the process's open-file limit, with room above the cap to answer 503. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionCaps, DEFAULT_CONNECTION_CAPS, readFileLimit, socketBudget } from '../../server/connection-limits.ts';

test('with room to spare, the cap is kept and the ceiling sits a quarter (at least 8) above it', () => {
  assert.deepEqual(socketBudget(1024, 1_048_576), { maxConnections: 1024, ceiling: 1280, lowered: false });
  assert.deepEqual(socketBudget(4, null), { maxConnections: 4, ceiling: 12, lowered: false });
  // Exactly fitting half the file limit is not lowered.
  assert.deepEqual(socketBudget(1024, 2560), { maxConnections: 1024, ceiling: 1280, lowered: false });
});

test('the ceiling never passes half the open-file limit: the issue\'s 400 gives at most 200 sockets', () => {
  for (const fileLimit of [20, 64, 400, 1024, 2559, 4096]) {
    for (const max of [1, 4, 100, 1024, 100_000]) {
      const b = socketBudget(max, fileLimit);
      assert.ok(b.ceiling <= Math.max(2, Math.floor(fileLimit / 2)), `${max} under ${fileLimit}: ceiling ${b.ceiling}`);
      assert.ok(b.maxConnections >= 1 && b.maxConnections < b.ceiling, `${max} under ${fileLimit}: ${JSON.stringify(b)}`);
      assert.equal(b.lowered, b.maxConnections < max);
    }
  }
  const issue = socketBudget(DEFAULT_CONNECTION_CAPS.maxConnections, 400);
  assert.deepEqual(issue, { maxConnections: 160, ceiling: 200, lowered: true });
});

test('caps are whole numbers of at least 1', () => {
  assert.deepEqual(connectionCaps({ maxPerClient: 4 }), { ...DEFAULT_CONNECTION_CAPS, maxPerClient: 4 });
  assert.throws(() => connectionCaps({ maxConnections: 0 }), /maxConnections must be a whole number of at least 1/);
  assert.throws(() => connectionCaps({ maxPerClient: 1.5 }), /maxPerClient must be a whole number/);
});

test('the open-file limit is read from /proc on Linux', () => {
  const limit = readFileLimit();
  if (process.platform === 'linux') assert.ok(limit === null || (Number.isSafeInteger(limit) && limit > 0), String(limit));
});
