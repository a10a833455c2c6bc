// The archive's lease across instances over a real RGW: one holder at a time, the same refusal as a local lease
// (transfer_locked, retryable, 409, Retry-After), takeover after expiry by the S3 server's clock, renewal, release,
// and fencing: a holder that lost the lease cannot write the upload's state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { rootOnly } from '../fixtures/btrfs.ts';
import { SnapferryError } from '../../core/errors.ts';
import { errorBody, errorHeaders, statusOf } from '../../server/http-errors.ts';
import { acquireLease, leaseKey, type ArchiveLease } from '../../server/archive/lease.ts';
import { FencedObject } from '../../server/archive/fenced-object.ts';
import { sharedS3 } from './store-fixture.ts';

const s3 = sharedS3();
/** Short, so that expiry is quick to wait out; the server's Date has whole seconds, so takeover needs 1-2 s more. */
const LEASE_MS = 2_000;
const State = z.object({ frames: z.number() });

async function refusal(p: Promise<unknown>): Promise<SnapferryError> {
  const err = await p.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof SnapferryError, `expected a refusal, got ${String(err)}`);
  return err;
}

/** Tries B until it gets the lease; returns it and how long it took. */
async function takeWhenFree(take: () => Promise<ArchiveLease>, limitMs: number): Promise<{ lease: ArchiveLease; waitedMs: number }> {
  const started = Date.now();
  for (;;) {
    try {
      return { lease: await take(), waitedMs: Date.now() - started };
    } catch (err) {
      if (!(err instanceof SnapferryError) || err.code !== 'transfer_locked' || Date.now() - started > limitMs) throw err;
      await sleep(200);
    }
  }
}

test('a lease held by instance A refuses B with transfer_locked (409, retryable, Retry-After); A may take it again', rootOnly, async () => {
  const b = await s3.bucket();
  const a = await acquireLease(b.store(), 'up1', 'instance-a', { leaseMs: 30_000 });
  assert.equal(a.generation, 1);
  assert.ok(a.remainingMs() > 25_000);
  const err = await refusal(acquireLease(b.store(), 'up1', 'instance-b', { leaseMs: 30_000 }));
  assert.equal(err.code, 'transfer_locked');
  assert.equal(err.retryable, true);
  assert.equal(statusOf(err), 409);
  const after = Number(errorHeaders(errorBody(err))['Retry-After']);
  assert.ok(after >= 29 && after <= 31, `Retry-After ${after}`);
  // Another upload is another lease.
  assert.equal((await acquireLease(b.store(), 'up2', 'instance-b')).generation, 1);
  // The same holder taking it again gets a new generation (fencing off its own older request).
  assert.equal((await acquireLease(b.store(), 'up1', 'instance-a')).generation, 2);
  const stored = JSON.parse((await b.store().get(leaseKey('up1')))!.body.toString());
  assert.equal(stored.holder, 'instance-a');
  assert.equal(stored.generation, 2);
});

test('of 10 instances racing for a free lease exactly one gets it, the others transfer_locked', rootOnly, async () => {
  const b = await s3.bucket();
  const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => acquireLease(b.store(), 'race', `instance-${i}`)));
  const won = results.filter((r) => r.status === 'fulfilled');
  assert.equal(won.length, 1, results.map((r) => (r.status === 'fulfilled' ? 'won' : String((r.reason as Error).message))).join('\n'));
  for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as SnapferryError).code, 'transfer_locked');
});

test('B takes over once A\'s lease expired by the S3 server\'s clock; A\'s fenced write then fails with lease_lost', rootOnly, async () => {
  const b = await s3.bucket();
  // A's clock stands still: a process paused (or starved) past its lease, which never notices the time that passed.
  // Only fencing can stop its writes then.
  const a = await acquireLease(b.store(), 'up', 'instance-a', { leaseMs: LEASE_MS, now: () => 0 });
  const aState = await FencedObject.claim(b.store(), a, 'uploads/up/state.json', State, { frames: 0 });
  await aState.write({ frames: 10 });

  const { lease: bLease, waitedMs } = await takeWhenFree(() => acquireLease(b.store(), 'up', 'instance-b', { leaseMs: LEASE_MS }), 10_000);
  // Not before the lease ran out: B's first try came right after A's write.
  assert.ok(waitedMs >= LEASE_MS - 500, `B got the lease after ${waitedMs} ms, within A's ${LEASE_MS} ms`);
  assert.equal(bLease.generation, a.generation + 1);
  const bState = await FencedObject.claim(b.store(), bLease, 'uploads/up/state.json', State, { frames: 0 });
  assert.deepEqual(bState.value, { frames: 10 }, 'B goes on from what A recorded');

  a.check(); // A still believes it holds the lease
  const lost = await refusal(aState.write({ frames: 11 }));
  assert.equal(lost.code, 'lease_lost');
  assert.equal(lost.retryable, true);
  assert.equal(statusOf(lost), 409);
  await assert.rejects(a.renew(), { code: 'lease_lost' });
  await assert.rejects(FencedObject.claim(b.store(), a, 'uploads/up/state.json', State, { frames: 0 }), { code: 'lease_lost' });
  await bState.write({ frames: 20 });
  const stored = JSON.parse((await b.store().get('uploads/up/state.json'))!.body.toString());
  assert.deepEqual(stored, { generation: bLease.generation, holder: 'instance-b', value: { frames: 20 } });
});

test('a holder whose own clock ran past the lease refuses to write before asking the store', rootOnly, async () => {
  const b = await s3.bucket();
  let clock = 0;
  const a = await acquireLease(b.store(), 'up', 'instance-a', { leaseMs: LEASE_MS, now: () => clock });
  const state = await FencedObject.claim(b.store(), a, 'uploads/up/state.json', State, { frames: 0 });
  clock = LEASE_MS - 1;
  await state.write({ frames: 1 });
  clock = LEASE_MS;
  await assert.rejects(state.write({ frames: 2 }), { code: 'lease_lost', message: /ran out before it was renewed/ });
  assert.deepEqual(JSON.parse((await b.store().get('uploads/up/state.json'))!.body.toString()).value, { frames: 1 });
});

test('renew keeps the lease: B is refused for several lease lengths while A renews, and gets it after A stops', rootOnly, async () => {
  const b = await s3.bucket();
  const a = await acquireLease(b.store(), 'up', 'instance-a', { leaseMs: LEASE_MS });
  const until = Date.now() + 3 * LEASE_MS + 1_000;
  let refusals = 0;
  while (Date.now() < until) {
    await a.renew();
    const err = await refusal(acquireLease(b.store(), 'up', 'instance-b', { leaseMs: LEASE_MS }));
    assert.equal(err.code, 'transfer_locked');
    refusals++;
    await sleep(LEASE_MS / 3);
  }
  assert.ok(refusals >= 6, `only ${refusals} tries`);
  assert.ok(a.remainingMs() > 0);
  const { lease, waitedMs } = await takeWhenFree(() => acquireLease(b.store(), 'up', 'instance-b', { leaseMs: LEASE_MS }), 10_000);
  assert.ok(waitedMs >= LEASE_MS - 1_000, `B got it ${waitedMs} ms after A's last renewal`);
  assert.equal(lease.generation, a.generation + 1);
});

test('keepAlive renews on its own until stopped; a takeover it meets stops it and marks the lease lost', rootOnly, async () => {
  const b = await s3.bucket();
  const a = await acquireLease(b.store(), 'up', 'instance-a', { leaseMs: LEASE_MS });
  const stop = a.keepAlive();
  await sleep(3 * LEASE_MS);
  await assert.rejects(acquireLease(b.store(), 'up', 'instance-b', { leaseMs: LEASE_MS }), { code: 'transfer_locked' });
  a.check();
  stop();
  const { lease: bLease } = await takeWhenFree(() => acquireLease(b.store(), 'up', 'instance-b', { leaseMs: LEASE_MS }), 10_000);

  // B holds it; a keepAlive B's takeover has hidden from C tells C at its next tick.
  const c = await acquireLease(b.store(), 'other', 'instance-c', { leaseMs: LEASE_MS });
  await b.store().swap(leaseKey('other'), Buffer.from(JSON.stringify({ holder: 'instance-d', generation: 9, expiresAt: new Date(Date.now() + 60_000).toISOString() })), (await b.store().get(leaseKey('other')))!.etag);
  // keepAlive's timer is unref'd (it must not keep a server alive): the bounded wait beside it keeps this test alive.
  const lost = await Promise.race([
    new Promise<SnapferryError>((resolve) => c.keepAlive(resolve)),
    sleep(20 * LEASE_MS).then(() => assert.fail('keepAlive never noticed the takeover')),
  ]);
  assert.equal(lost.code, 'lease_lost');
  assert.throws(() => c.check(), { code: 'lease_lost', message: /another instance took it over/ });
  assert.ok(bLease.remainingMs() > 0);
});

test('release lets B in at once, and the released lease keeps its generation', rootOnly, async () => {
  const b = await s3.bucket();
  const a = await acquireLease(b.store(), 'up', 'instance-a', { leaseMs: 60_000 });
  await assert.rejects(acquireLease(b.store(), 'up', 'instance-b'), { code: 'transfer_locked' });
  await a.release();
  assert.equal(a.remainingMs(), 0);
  assert.throws(() => a.check(), { code: 'lease_lost' });
  const bLease = await acquireLease(b.store(), 'up', 'instance-b', { leaseMs: 60_000 });
  assert.equal(bLease.generation, 2);
  await a.release(); // quiet, and changes nothing: B still holds it
  await assert.rejects(acquireLease(b.store(), 'up', 'instance-c'), { code: 'transfer_locked' });
});

test('an upload id that is not one plain path part is refused', rootOnly, async () => {
  const b = await s3.bucket();
  for (const bad of ['', '..', 'a/b', '../x', 'a b']) await assert.rejects(acquireLease(b.store(), bad, 'h'), { code: 'invalid_input' }, bad);
});
