/**
 * What a client holds in the spool (server/spool/usage.ts), over a measure of the disk the test controls: files as
 * they are, never a declared length; writes in progress counted at what arrived, so two at once see each other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpoolUsage, type SpoolFiles } from '../../server/spool/usage.ts';

/** A disk the test sets; counts how often it was measured. */
function disk(initial: Record<string, SpoolFiles[]> = {}) {
  const state = { spools: initial, measured: 0 };
  const usage = new SpoolUsage((client) => {
    state.measured++;
    return Promise.resolve([...(state.spools[client] ?? [])]);
  });
  return { state, usage };
}

const spool = (id: string, streamBytes: number, otherBytes = 0): SpoolFiles => ({ id, streamBytes, otherBytes });

test('every file of every upload of the client counts, as on disk; other clients do not', async () => {
  const { usage } = disk({ alice: [spool('a', 900, 100), spool('b', 0, 300)], bob: [spool('c', 5000)] });
  assert.equal(await usage.total('alice'), 1300);
  assert.equal(await usage.total('bob'), 5000);
  assert.equal(await usage.total('carol'), 0);
});

test('a write counts at what it has reached, beyond what was on disk when the disk was measured', async () => {
  const { usage } = disk({ alice: [spool('a', 1000, 64), spool('b', 500)] });
  const w = await usage.begin('alice', 'a', 1000);
  assert.equal(w.total(), 1564);
  w.reach(4000);
  assert.equal(w.total(), 4564);
  // Never below the disk: the write's own count only adds what arrived.
  w.reach(10);
  assert.equal(w.total(), 1564);
});

test("two writes of one client at once see each other's bytes as they arrive, without measuring the disk again", async () => {
  const { state, usage } = disk({ alice: [spool('a', 0), spool('b', 0)] });
  const a = await usage.begin('alice', 'a', 0);
  const b = await usage.begin('alice', 'b', 0);
  const measured = state.measured;
  a.reach(700);
  b.reach(600);
  assert.equal(a.total(), 1300);
  assert.equal(b.total(), 1300);
  assert.equal(state.measured, measured, 'growth alone needs no new measure');
  // An upload whose write began after a measure that did not see it yet still counts.
  const c = await usage.begin('alice', 'c', 50);
  assert.equal(a.total(), 1350);
  c.end();
});

test('a write that ends makes the others measure again: its bytes are on disk now, not in memory', async () => {
  const { state, usage } = disk({ alice: [spool('a', 0), spool('b', 0)] });
  const a = await usage.begin('alice', 'a', 0);
  const b = await usage.begin('alice', 'b', 0);
  b.reach(800);
  state.spools.alice = [spool('a', 0), spool('b', 800, 64)];
  b.end();
  assert.equal(a.total(), null, 'stale: the measure a rests on saw b at 0');
  assert.equal(await a.measure(), 864);
  assert.equal(a.total(), 864);
});

test('a change the caller reports (a new upload) makes writes measure again; another client\'s does not', async () => {
  const { usage } = disk({ alice: [spool('a', 10)] });
  const a = await usage.begin('alice', 'a', 10);
  usage.changed('bob');
  assert.equal(a.total(), 10);
  usage.changed('alice');
  assert.equal(a.total(), null);
});
