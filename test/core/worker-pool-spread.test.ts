// The pool starts a worker only when a job may go to it: jobs spread over fewer workers than the pool's size (the
// compression pool at levels one worker keeps ahead with) leave the rest unstarted, and their memory unspent.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { it } from 'node:test';
import { WorkerPool } from '../../core/worker-pool.ts';
import { CompressionPool, RETIRE_AFTER_JOBS, SPREAD_FROM_LEVEL } from '../../core/wire/compression-pool.ts';

/** A worker that answers each job after `ms`, with the id of the thread that ran it. */
const ECHO = new URL(
  `data:text/javascript,${encodeURIComponent(`
    import { parentPort, threadId } from 'node:worker_threads';
    parentPort.on('message', (req) => setTimeout(() => parentPort.postMessage({ id: req.id, thread: threadId }), req.ms));
  `)}`,
);

interface Req { id: number; ms: number }
interface Res { id: number; thread: number }

function echoPool(size: number): WorkerPool<Req, Res, number> {
  return new WorkerPool<Req, Res, number>({ url: ECHO, size, name: 'an echo worker', settle: (res) => res.thread });
}

it('jobs spread over one worker start one thread, however many wait at once', async (t) => {
  const pool = echoPool(3);
  t.after(() => pool.close(new Error('done')));
  const threads = await Promise.all(Array.from({ length: 6 }, () => pool.run({ ms: 20 }, undefined, [], 1)));
  assert.equal(new Set(threads).size, 1, `ran on threads ${[...new Set(threads)].join(', ')}`);
});

it('jobs spread over the whole pool use every worker once several wait at once', async (t) => {
  const pool = echoPool(3);
  t.after(() => pool.close(new Error('done')));
  const threads = await Promise.all(Array.from({ length: 6 }, () => pool.run({ ms: 20 }, undefined)));
  assert.equal(new Set(threads).size, 3);
});

it('the compression pool keeps levels below SPREAD_FROM_LEVEL on one worker and spreads from it on', async (t) => {
  const pool = new CompressionPool(2);
  t.after(() => pool.close());
  assert.equal(pool.size, 2);
  const chunk = () => Buffer.alloc(256 * 1024, 7);
  await Promise.all([0, 1, SPREAD_FROM_LEVEL - 1].map((level) => pool.run(chunk(), level)));
  assert.equal(pool.inUse, 1, 'jobs in flight follow the one worker in use');
  assert.equal(pool.workersStarted, 1);
  await Promise.all([SPREAD_FROM_LEVEL, SPREAD_FROM_LEVEL, SPREAD_FROM_LEVEL].map((level) => pool.run(chunk(), level)));
  assert.equal(pool.inUse, 2);
  assert.equal(pool.workersStarted, 2);
});

it('the compression pool stops its extra workers after RETIRE_AFTER_JOBS jobs below SPREAD_FROM_LEVEL, and starts them again above', async (t) => {
  const pool = new CompressionPool(2);
  t.after(() => pool.close());
  const chunk = () => Buffer.alloc(64 * 1024, 7);
  const batch = (level: number, n: number) => Promise.all(Array.from({ length: n }, () => pool.run(chunk(), level)));
  await batch(SPREAD_FROM_LEVEL, 4);
  assert.equal(pool.workersStarted, 2);
  await batch(1, RETIRE_AFTER_JOBS - 1);
  assert.equal(pool.workersStarted, 2, 'a short spell at a low level keeps the second worker');
  await batch(1, 2);
  assert.equal(pool.workersStarted, 1, 'a long one stops it');
  const parts = await batch(SPREAD_FROM_LEVEL, 4);
  assert.equal(pool.workersStarted, 2);
  assert.ok(parts.every((p) => p.codec === 'zstd'), 'the restarted worker compresses');
});

it('raw chunks are hashed without a worker: a push of raw frames starts none, and a long spell of them stops the ones running', async (t) => {
  const pool = new CompressionPool(2);
  t.after(() => pool.close());
  const chunk = (fill: number) => Buffer.alloc(64 * 1024, fill);
  const raw = await pool.run(chunk(1), 0);
  assert.equal(pool.workersStarted, 0, 'raw frames need no worker');
  assert.deepEqual([raw.codec, raw.level, raw.spare], ['raw', 0, null]);
  assert.deepEqual(raw.rawHash, createHash('sha256').update(chunk(1)).digest(), 'the chunk is hashed all the same');
  await Promise.all([1, 3].map((level) => pool.run(chunk(2), level)));
  assert.equal(pool.workersStarted, 1);
  for (let i = 0; i < RETIRE_AFTER_JOBS - 1; i++) await pool.run(chunk(3), 0);
  assert.equal(pool.workersStarted, 1, 'a short spell of raw frames keeps the worker');
  await pool.run(chunk(3), 0);
  assert.equal(pool.workersStarted, 0, 'a long one stops it');
  assert.equal((await pool.run(chunk(4), 1)).codec, 'zstd', 'and a compressed frame starts it again');
  assert.equal(pool.workersStarted, 1);
});
