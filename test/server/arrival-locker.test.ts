// tus's lock in arrival order (server/upload-store/arrival-locker.ts): a request that arrived earlier goes first even
// when it asks for the lock later; the holder is asked to let go (tus's cancel); one that leaves before asking, or
// gives up, holds no one up; uploads do not wait on each other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { ArrivalLocker } from '../../server/upload-store/arrival-locker.ts';

const TIMED_OUT = new Error('lock timeout');
const req = () => new Request('http://x/v1/uploads/u');
const never = new AbortController().signal;

async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  for (let i = 0; i < 5; i++) await tick();
  return done;
}

test('a request that arrived first takes the lock first, though it asks later; the later one waits for its unlock', async () => {
  const locker = new ArrivalLocker(() => TIMED_OUT);
  const patch = req();
  const head = req();
  locker.arrive(patch, 'u');
  locker.arrive(head, 'u');
  const headLock = locker.lockerFor(head).newLock('u');
  const headGot = headLock.lock(never, () => undefined);
  assert.equal(await settled(headGot), false, 'the HEAD took the lock before the PATCH that arrived before it');
  let cancels = 0;
  const patchLock = locker.lockerFor(patch).newLock('u');
  await patchLock.lock(never, () => void cancels++);
  assert.equal(await settled(headGot), false);
  // As MemoryLocker does: the waiter asks the holder to let go (tus then stops its request after lockDrainTimeout).
  assert.equal(cancels, 1);
  await patchLock.unlock();
  await headGot;
  await headLock.unlock();
});

test('a request that leaves without asking for the lock (refused before tus) holds no one up; nor does another upload', async () => {
  const locker = new ArrivalLocker(() => TIMED_OUT);
  const refused = req();
  const head = req();
  const other = req();
  const leave = locker.arrive(refused, 'u');
  locker.arrive(head, 'u');
  locker.arrive(other, 'w');
  await locker.lockerFor(other).newLock('w').lock(never, () => undefined);
  const headGot = locker.lockerFor(head).newLock('u').lock(never, () => undefined);
  assert.equal(await settled(headGot), false);
  leave();
  await headGot;
});

test('a waiter gives up with the timeout error, and the ones after it do not wait for it', async () => {
  const locker = new ArrivalLocker(() => TIMED_OUT, 50);
  const [first, second, third] = [req(), req(), req()];
  locker.arrive(first, 'u');
  locker.arrive(second, 'u');
  const firstLock = locker.lockerFor(first).newLock('u');
  await firstLock.lock(never, () => undefined);
  await assert.rejects(locker.lockerFor(second).newLock('u').lock(never, () => undefined), (e) => e === TIMED_OUT);
  locker.arrive(third, 'u');
  const thirdGot = locker.lockerFor(third).newLock('u').lock(never, () => undefined);
  await firstLock.unlock();
  await thirdGot;
  // A request tus stops while it waits gives up too.
  const stop = new AbortController();
  const fourth = req();
  const waiting = locker.lockerFor(fourth).newLock('u').lock(stop.signal, () => undefined);
  stop.abort();
  await assert.rejects(waiting, (e) => e === TIMED_OUT);
});
