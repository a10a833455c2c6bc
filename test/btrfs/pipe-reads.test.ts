/**
 * core/btrfs/pipe-reads.ts reads btrfs send's pipe into chunk-sized buffers that the frame encoder takes whole, and
 * refills memory the encoder hands back. A resume compares a regenerated stream with the one the server holds, so
 * what comes out must be the bytes written, whatever sizes the writer's writes and the pipe's reads had, however
 * slowly the consumer reads, and however soon it hands memory back; and the stream must never end for a writer
 * that failed. No root needed: the writer is this process, through a pipe made as sendInChunks() makes it.
 */
import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { promisify } from 'node:util';
import { write as writeCb } from 'node:fs';
import { describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import fc from 'fast-check';
import { BtrfsCommandError, sendInChunks } from '../../core/btrfs/index.ts';
import { openOwnPipe } from '../../core/btrfs/own-pipe.ts';
import { FilledReads } from '../../core/btrfs/pipe-reads.ts';

const writeFd = promisify(writeCb);

/** Writes `data` into a fresh pipe in pieces of `writes` sizes (cycled), then closes the write end. */
async function pipeOf(data: Buffer, writes: number[]): Promise<{ readFd: number; written: Promise<void> }> {
  const pipe = await openOwnPipe();
  const written = (async () => {
    try {
      for (let at = 0, i = 0; at < data.length; i++) {
        const n = Math.min(writes[i % writes.length]!, data.length - at);
        // A pipe may take less than asked when full: write the rest again.
        for (let done = 0; done < n; ) done += (await writeFd(pipe.writeFd, data, at + done, n - done)).bytesWritten;
        at += n;
      }
    } finally {
      closeSync(pipe.writeFd);
    }
  })();
  return { readFd: pipe.readFd, written };
}

const bytesOf = (length: number, seed: number): Buffer => {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return b;
};

/**
 * A run costs a write or a read per few bytes when its writes or its chunks are that small: one of 600 KB in 1-byte
 * writes took 37 s of CPU, one in 10-byte chunks 2 s. So a stream is at most this many writes and this many chunks
 * long; every write size still meets every chunk size, and from 16 bytes each up a stream can still fill the pipe
 * (64 KiB, a mkfifo's) twice over while the reader pauses.
 */
const MAX_STEPS = 8192;

/** Writes, chunk size, pauses and reuse, then a length up to 600 KB that takes at most MAX_STEPS writes and chunks. */
const runs = fc
  .tuple(
    fc.array(fc.integer({ min: 1, max: 200_000 }), { minLength: 1, maxLength: 6 }),
    fc.integer({ min: 1, max: 300_000 }),
    fc.array(fc.nat(3), { minLength: 1, maxLength: 5 }),
    fc.boolean(),
  )
  .chain(([writes, size, pauses, reuse]) => {
    const meanWrite = writes.reduce((a, b) => a + b, 0) / writes.length;
    const max = Math.floor(Math.min(600_000, MAX_STEPS * meanWrite, MAX_STEPS * size));
    return fc.integer({ min: 0, max }).map((length) => [length, writes, size, pauses, reuse] as const);
  });

describe('FilledReads', () => {
  it('gives back exactly the bytes written, in chunks of the size asked, for any writes, pace and reuse', async () => {
    await fc.assert(
      fc.asyncProperty(
        runs,
        async ([length, writes, size, pauses, reuse]) => {
          const data = bytesOf(length, size);
          const { readFd, written } = await pipeOf(data, writes);
          const spares: Buffer[] = [];
          const given = new Set<ArrayBufferLike>();
          const stream = new FilledReads(readFd, written, {
            size,
            allocate: () => {
              const spare = spares.pop() ?? null;
              if (spare) given.add(spare.buffer);
              return spare;
            },
          });
          const out: Buffer[] = [];
          let i = 0;
          for await (const chunk of stream as AsyncIterable<Buffer>) {
            // Copied out, then (as the encoder does once a frame is acknowledged) handed back to be filled again: a
            // chunk refilled while still unread would show up here as changed bytes.
            out.push(Buffer.from(chunk));
            if (reuse && chunk.length === size) {
              chunk.fill(0xee);
              spares.push(chunk);
            }
            for (let p = pauses[i++ % pauses.length]!; p > 0; p--) await tick();
          }
          assert.ok(Buffer.concat(out).equals(data));
          for (const [k, chunk] of out.entries()) {
            if (k < out.length - 1) assert.equal(chunk.length, size);
            else assert.ok(chunk.length >= 1 && chunk.length <= size);
          }
          if (reuse && out.length > 2) assert.ok(given.size > 0, 'handed-back memory was filled again');
        },
      ),
      { numRuns: 60 },
    );
  });

  it('errors instead of ending when the writer failed, even though the pipe reached EOF', async () => {
    const data = bytesOf(100_000, 1);
    const { readFd, written } = await pipeOf(data, [30_000]);
    const failure = new Error('btrfs send exited with code 1');
    const stream = new FilledReads(readFd, written.then(() => Promise.reject(failure)), { size: 64 * 1024 });
    let ended = false;
    stream.on('end', () => (ended = true));
    const got: Buffer[] = [];
    await assert.rejects(
      (async () => {
        for await (const chunk of stream as AsyncIterable<Buffer>) got.push(chunk);
      })(),
      (err: unknown) => err === failure,
    );
    assert.equal(ended, false);
  });

  it('passes on what its step makes of each chunk, and what the step gives at the end before ending', async () => {
    const data = bytesOf(300_000, 7);
    const { readFd, written } = await pipeOf(data, [50_000, 120_000]);
    const taken: number[] = [];
    const stream = new FilledReads(readFd, written, {
      size: 64 * 1024,
      step: {
        take: (chunk) => {
          taken.push(chunk.length);
          // Held back, then passed on with the next: a step may hold, split or join.
          return taken.length === 1 ? [] : taken.length === 2 ? [data.subarray(0, 64 * 1024), Buffer.from(chunk)] : [chunk];
        },
        end: () => [Buffer.from('end of stream')],
      },
    });
    const out: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) out.push(Buffer.from(chunk));
    assert.deepEqual(taken, [...Array(4).fill(64 * 1024), 300_000 - 4 * 64 * 1024]);
    assert.ok(Buffer.concat(out).equals(Buffer.concat([data, Buffer.from('end of stream')])));
  });

  it('fails with the error its step throws, on a chunk or at the end, instead of ending', async () => {
    for (const where of ['take', 'end'] as const) {
      const data = bytesOf(200_000, 3);
      const { readFd, written } = await pipeOf(data, [200_000]);
      const refusal = new Error(`refused at ${where}`);
      let takes = 0;
      const stream = new FilledReads(readFd, written, {
        size: 64 * 1024,
        step: {
          take: (chunk) => {
            if (where === 'take' && ++takes === 2) throw refusal;
            return [chunk];
          },
          end: () => {
            if (where === 'end') throw refusal;
            return [];
          },
        },
      });
      let ended = false;
      stream.on('end', () => (ended = true));
      await assert.rejects(
        (async () => {
          for await (const _ of stream as AsyncIterable<Buffer>) void _;
        })(),
        (err: unknown) => err === refusal,
      );
      assert.equal(ended, false, where);
    }
  });

  it('closes its end of the pipe when destroyed early, so a writer blocked on a full pipe fails', async () => {
    const pipe = await openOwnPipe();
    const stream = new FilledReads(pipe.readFd, new Promise(() => {}), { size: 64 * 1024 });
    // Nothing reads: the pipe fills, then the next write waits until the reader goes away.
    const big = Buffer.alloc(4 * 1024 * 1024);
    const writing = writeFd(pipe.writeFd, big, 0, big.length).then(() => writeFd(pipe.writeFd, big, 0, big.length));
    await tick();
    stream.destroy();
    await assert.rejects(writing, { code: 'EPIPE' });
    closeSync(pipe.writeFd);
  });

  it('a send whose pipe cannot be made runs with node\'s reads instead: btrfs itself answers', async () => {
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = '/nonexistent/snapferry-no-tmp';
    let handle;
    try {
      handle = await sendInChunks('/nowhere', { reads: { size: 64 * 1024 } });
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    await assert.rejects(handle.done, (err: unknown) => {
      assert.ok(err instanceof BtrfsCommandError);
      assert.equal(err.code, 'btrfs_failed');
      assert.deepEqual(err.command, ['btrfs', 'send', '--', '/nowhere']);
      // btrfs ran and refused the path (the fallback), or is not installed here: never a failure to make the pipe.
      assert.doesNotMatch(err.message, /pipe/);
      assert.ok(err.exitCode !== null || /ENOENT|not found/i.test(err.message), err.message);
      return true;
    });
    await assert.rejects(
      (async () => {
        for await (const _ of handle.stream) void _;
      })(),
      BtrfsCommandError,
    );
  });
});
