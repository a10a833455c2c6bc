// The lease on an upload (server/leases.ts): another push waits it out, unless the push that held it let go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TransferLocked, UploadLeases } from '../../server/leases.ts';

const LEASE = 15_000;

function locked(fn: () => void): number {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TransferLocked, String(err));
    return (err.details as { retryAfterSeconds: number }).retryAfterSeconds;
  }
  assert.fail('the lease was taken');
}

test('another push waits out the lease after the holder\'s last request', () => {
  const leases = new UploadLeases(LEASE);
  leases.acquire('u', 'a', 0);
  leases.enter('u');
  leases.leave('u', 1_000);
  assert.equal(locked(() => leases.acquire('u', 'b', 2_000)), 14);
  leases.acquire('u', 'b', 1_000 + LEASE);
});

test('a holder that lets go with no request in flight frees the upload at once', () => {
  const leases = new UploadLeases(LEASE);
  leases.acquire('u', 'a', 0);
  leases.enter('u');
  leases.leave('u', 1_000);
  assert.equal(leases.releaseBy('u', 'a'), true);
  leases.acquire('u', 'b', 1_001);
  assert.equal(locked(() => leases.acquire('u', 'a', 1_002)), 15, 'the new holder has it now');
});

test('a holder that lets go while its cut request is still in flight frees the upload when that request ends', () => {
  const leases = new UploadLeases(LEASE);
  leases.acquire('u', 'a', 0);
  leases.enter('u');
  assert.equal(leases.releaseBy('u', 'a'), true);
  assert.equal(locked(() => leases.acquire('u', 'b', 10)), 1, 'a second, not the whole lease');
  leases.leave('u', 20);
  leases.acquire('u', 'b', 21);
});

test('only the holder can let go: another session\'s release changes nothing', () => {
  const leases = new UploadLeases(LEASE);
  leases.acquire('u', 'a', 0);
  leases.enter('u');
  leases.leave('u', 0);
  assert.equal(leases.releaseBy('u', 'b'), false);
  assert.equal(leases.releaseBy('other', 'a'), false);
  assert.equal(locked(() => leases.acquire('u', 'b', 1)), 15);
});

test('a holder that lets go and comes back with a request holds the lease as before', () => {
  const leases = new UploadLeases(LEASE);
  leases.acquire('u', 'a', 0);
  leases.enter('u');
  leases.releaseBy('u', 'a');
  leases.acquire('u', 'a', 5);
  leases.enter('u');
  leases.leave('u', 6);
  leases.leave('u', 7);
  assert.equal(locked(() => leases.acquire('u', 'b', 8)), 15, 'taken back, the lease runs its full length again');
});

test('an upload is held by a push while a request runs and within the lease after its last, by nobody once let go', () => {
  const leases = new UploadLeases(LEASE);
  assert.equal(leases.held('u', 0), false, 'never leased');
  leases.acquire('u', 'a', 0);
  leases.enter('u');
  assert.equal(leases.held('u', 10 * LEASE), true, 'a request in flight');
  leases.leave('u', 1_000);
  assert.equal(leases.held('u', LEASE), true);
  assert.equal(leases.held('u', 1_000 + LEASE), false, 'the lease ran out');
  leases.acquire('u', 'a', 2_000 + LEASE);
  leases.enter('u');
  leases.releaseBy('u', 'a');
  assert.equal(leases.held('u', 2_001 + LEASE), false, 'its push stopped: its last request is no push holding it');
});
