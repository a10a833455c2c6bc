/**
 * StallWatch on a fake clock: quiet writes on a line whose bytes still arrive at the server (socket buffers draining
 * a slow line) never stall; a line that carries nothing does, within the stall timeout; without a way to ask the
 * server, quiet writes are a stall.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StallWatch } from '../../../client/upload/stall-watch.ts';

const STALL = 30_000;

/** Drives a watch: the clock moves in steps, probes answer at once (or fail), and `stalledAt` records when it gave up. */
function drive(opts: { probe?: (now: number) => number | Error; lastActivity?: number; until: number; step?: number }) {
  let now = 0;
  let stalledAt: number | null = null;
  const probes: { at: number; timeoutMs: number }[] = [];
  const probe = opts.probe
    ? (timeoutMs: number) => {
        probes.push({ at: now, timeoutMs });
        const r = opts.probe!(now);
        return r instanceof Error ? Promise.reject(r) : Promise.resolve(r);
      }
    : undefined;
  const watch = new StallWatch(STALL, () => probe, () => (stalledAt = now), () => now);
  return (async () => {
    for (; now <= opts.until && stalledAt === null; now += opts.step ?? 1000) {
      watch.check(opts.lastActivity ?? 0);
      // Let a probe's answer land before the clock moves on.
      await new Promise((r) => setImmediate(r));
    }
    return { stalledAt, probes };
  })();
}

test('without a probe, writes quiet for the stall timeout are a stall, not before', async () => {
  const { stalledAt } = await drive({ until: 10 * STALL });
  assert.equal(stalledAt, STALL);
});

test('quiet writes while the server still sees bytes arrive never stall, however long', async () => {
  // A slow line draining a full socket buffer: 2 kB a second reach the server, the client writes nothing.
  const { stalledAt, probes } = await drive({ probe: (now) => Math.floor(now / 500), until: 20 * STALL });
  assert.equal(stalledAt, null);
  assert.ok(probes.length >= 20, `${probes.length} probes`);
  assert.ok(probes.every((p) => p.timeoutMs === STALL / 2), 'each probe has half the stall timeout');
});

test('a line that carries nothing stalls within the stall timeout of the last byte', async () => {
  const { stalledAt } = await drive({ probe: () => 1234, until: 10 * STALL });
  assert.equal(stalledAt, STALL);
});

test('bytes that stop arriving stall one stall timeout later', async () => {
  const stopsAt = 5 * STALL;
  const { stalledAt } = await drive({ probe: (now) => Math.floor(Math.min(now, stopsAt) / 500), until: 20 * STALL });
  assert.ok(stalledAt !== null && stalledAt > stopsAt && stalledAt <= stopsAt + 2 * STALL, `stalled at ${stalledAt}`);
});

test('a probe that gets no answer is a stall', async () => {
  const { stalledAt } = await drive({ probe: () => new Error('server_stalled'), until: 10 * STALL });
  assert.equal(stalledAt, STALL / 2);
});

test("the client's own progress starts the watch over", async () => {
  let now = 0;
  let stalled = false;
  const watch = new StallWatch(STALL, () => undefined, () => (stalled = true), () => now);
  for (; now < 10 * STALL; now += 1000) watch.check(now - 5000);
  assert.equal(stalled, false);
});
