// The pool starts a worker only when a job may go to it: jobs spread over fewer workers than the pool's size leave
// the rest unstarted, and their memory unspent; the compression pool starts none for what it does on its own thread.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { it } from 'node:test';
import { WorkerPool } from '../../core/worker-pool.ts';
import { CompressionPool, RETIRE_AFTER_JOBS, WORKERS_FROM_LEVEL } from '../../core/wire/compression-pool.ts';

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

it('the compression pool compresses below WORKERS_FROM_LEVEL here, with no worker, and spreads over every worker from it on', async (t) => {
  const pool = new CompressionPool(2);
  t.after(() => pool.close());
  assert.equal(pool.size, 2);
  const chunk = () => Buffer.alloc(256 * 1024, 7);
  const low = await Promise.all([0, 1, WORKERS_FROM_LEVEL - 1].map((level) => pool.run(chunk(), level)));
  assert.deepEqual(low.map((p) => p.codec), ['raw', 'zstd', 'zstd']);
  assert.equal(pool.inUse, 1, 'jobs in flight follow the one thread in use');
  assert.equal(pool.workersStarted, 0);
  const high = await Promise.all([WORKERS_FROM_LEVEL, WORKERS_FROM_LEVEL, WORKERS_FROM_LEVEL].map((level) => pool.run(chunk(), level)));
  assert.ok(high.every((p) => p.codec === 'zstd'));
  assert.equal(pool.inUse, 2);
  assert.equal(pool.workersStarted, 2);
});

it('the compression pool stops its workers after RETIRE_AFTER_JOBS jobs done here, raw or at a low level, and starts them again above', async (t) => {
  const pool = new CompressionPool(2);
  t.after(() => pool.close());
  const chunk = (fill: number) => Buffer.alloc(64 * 1024, fill);
  const batch = (level: number, n: number) => Promise.all(Array.from({ length: n }, () => pool.run(chunk(level + 1), level)));
  await batch(WORKERS_FROM_LEVEL, 4);
  assert.equal(pool.workersStarted, 2);
  await batch(1, RETIRE_AFTER_JOBS / 2);
  await batch(0, RETIRE_AFTER_JOBS / 2 - 1);
  assert.equal(pool.workersStarted, 2, 'a short spell of jobs done here keeps the workers');
  await batch(1, 1);
  assert.equal(pool.workersStarted, 0, 'a long one, of either kind, stops them');
  const parts = await batch(WORKERS_FROM_LEVEL, 4);
  assert.equal(pool.workersStarted, 2);
  assert.ok(parts.every((p) => p.codec === 'zstd'), 'the restarted workers compress');
});

it('raw and low-level chunks are done on the calling thread: a push of them starts no worker, and a long spell of raw ones lets its compressor go', async (t) => {
  const pool = new CompressionPool(2);
  t.after(() => pool.close());
  const chunk = (fill: number) => Buffer.alloc(64 * 1024, fill);
  const raw = await pool.run(chunk(1), 0);
  assert.equal(pool.workersStarted, 0, 'raw frames need no worker');
  assert.deepEqual([raw.codec, raw.level, raw.spare], ['raw', 0, null]);
  assert.deepEqual(raw.rawHash, createHash('sha256').update(chunk(1)).digest(), 'the chunk is hashed all the same');
  const low = chunk(2);
  const zstd = await pool.run(low, WORKERS_FROM_LEVEL - 1);
  assert.equal(pool.workersStarted, 0, 'nor do low levels');
  assert.deepEqual([zstd.codec, zstd.level], ['zstd', WORKERS_FROM_LEVEL - 1]);
  assert.deepEqual(zstd.rawHash, createHash('sha256').update(chunk(2)).digest());
  assert.equal(zstd.spare, low, "the raw chunk's memory is free for the next chunk once compressed");
  pool.recycle(zstd.payload);
  assert.ok(pool.heldPayloadBytes >= zstd.payload.length, "the payload's memory is kept for the next one");
  for (let i = 0; i < RETIRE_AFTER_JOBS; i++) await pool.run(chunk(3), 0);
  assert.equal(pool.heldPayloadBytes, 0, 'a long spell of raw frames lets it go');
});
