// btrfs send read into chunk-sized buffers (sendInChunks, ChunkedSendOptions.reads: a pipe of ours, core/btrfs/own-pipe.ts and
// pipe-reads.ts) against real btrfs: the same bytes as the plain send, and every failure surfaces as it does there:
// the exit status and stderr reach the caller, a send that dies midway fails its stream instead of ending it, and
// nothing is left open. Needs root (skipped with a message otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import * as btrfs from '../../core/btrfs/index.ts';
import { BtrfsCommandError } from '../../core/btrfs/index.ts';
import { createBtrfs, fillVaried, mutate, rootOnly, snapshotReadonly } from '../fixtures/btrfs.ts';
import { sendChildren } from '../fixtures/send-children.ts';

const SIZE = 64 * 1024;

async function chunksOf(stream: Readable): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return chunks;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function sourceWithSnapshot(t: Parameters<typeof createBtrfs>[0], sizeMB = 2) {
  const fs = await createBtrfs(t);
  const vol = `${fs.mountPoint}/vol`;
  await btrfs.createSubvolume(vol);
  await fillVaried(vol, { seed: 11, sizeMB });
  await snapshotReadonly(vol, `${fs.mountPoint}/s1`);
  return { fs, vol, s1: `${fs.mountPoint}/s1` };
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

test('read into chunks: the same bytes as the plain send, full and incremental, each chunk the size asked', rootOnly, async (t) => {
  const { fs, vol, s1 } = await sourceWithSnapshot(t, 3);
  await mutate(vol, 2);
  const s2 = `${fs.mountPoint}/s2`;
  await snapshotReadonly(vol, s2);
  for (const [path, parent] of [[s1, undefined], [s2, s1]] as const) {
    const options = parent ? { parent } : {};
    const plain = btrfs.send(path, options);
    const whole = Buffer.concat(await chunksOf(plain.stream));
    await plain.done;
    const handedBack: Buffer[] = [];
    const used = new Set<ArrayBufferLike>();
    const chunked = await btrfs.sendInChunks(path, {
      ...options,
      reads: {
        size: SIZE,
        allocate: () => {
          const spare = handedBack.pop() ?? null;
          if (spare) used.add(spare.buffer);
          return spare;
        },
      },
    });
    const parts: Buffer[] = [];
    for await (const chunk of chunked.stream as AsyncIterable<Buffer>) {
      parts.push(Buffer.from(chunk));
      if (chunk.length === SIZE) handedBack.push(chunk.fill(0));
    }
    await chunked.done;
    assert.equal(sha256(Buffer.concat(parts)), sha256(whole));
    assert.ok(parts.length > 2, `a stream of several chunks (${whole.length} bytes)`);
    for (const part of parts.slice(0, -1)) assert.equal(part.length, SIZE);
    assert.ok(used.size > 0, 'memory handed back was filled again');
    assert.deepEqual(chunked.command, ['btrfs', 'send', ...(parent ? ['-p', parent] : []), '--', path]);
  }
});

test('read into chunks with a first chunk of its own size (push renames the first command): every later chunk the size asked', rootOnly, async (t) => {
  const { s1 } = await sourceWithSnapshot(t, 3);
  const plain = btrfs.send(s1);
  const whole = Buffer.concat(await chunksOf(plain.stream));
  await plain.done;
  for (const firstSize of [SIZE - 16, SIZE + 219]) {
    const chunked = await btrfs.sendInChunks(s1, { reads: { size: SIZE, firstSize } });
    const parts = (await chunksOf(chunked.stream)).map((b) => Buffer.from(b));
    await chunked.done;
    assert.equal(sha256(Buffer.concat(parts)), sha256(whole));
    assert.equal(parts[0]!.length, firstSize);
    for (const part of parts.slice(1, -1)) assert.equal(part.length, SIZE);
  }
});

test('a step takes every chunk of the send, through our pipe and through node\'s reads where no pipe can be made', rootOnly, async (t) => {
  const { s1 } = await sourceWithSnapshot(t, 2);
  const plain = btrfs.send(s1);
  const whole = Buffer.concat(await chunksOf(plain.stream));
  await plain.done;
  for (const tmpdir of [process.env.TMPDIR, '/nonexistent/snapferry-no-tmp']) {
    let taken = 0;
    const saved = process.env.TMPDIR;
    if (tmpdir === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = tmpdir;
    let chunked;
    try {
      chunked = await btrfs.sendInChunks(s1, {
        reads: {
          size: SIZE,
          step: {
            take: (chunk) => {
              taken += chunk.length;
              return [chunk];
            },
            end: () => [Buffer.from('the end')],
          },
        },
      });
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    const out = Buffer.concat(await chunksOf(chunked.stream));
    await chunked.done;
    assert.equal(taken, whole.length, `TMPDIR ${tmpdir}`);
    assert.ok(out.equals(Buffer.concat([whole, Buffer.from('the end')])), `TMPDIR ${tmpdir}`);
  }
});

test('read into chunks: a failed send rejects with its exit code and stderr, and its stream errors', rootOnly, async (t) => {
  const { fs, vol } = await sourceWithSnapshot(t, 1);
  const missing = await btrfs.sendInChunks(`${fs.mountPoint}/no such snapshot`, { reads: { size: SIZE } });
  await assert.rejects(chunksOf(missing.stream), BtrfsCommandError);
  await assert.rejects(missing.done, (err: unknown) => {
    assert.ok(err instanceof BtrfsCommandError);
    assert.equal(err.code, 'btrfs_failed');
    assert.equal(err.exitCode, 1);
    assert.match(err.stderrTail, /ERROR: unable to resolve/);
    assert.match(err.message, /^btrfs send -- '.*no such snapshot' exited with code 1:\nERROR: unable to resolve/);
    return true;
  });
  // Not read-only: btrfs refuses after it started, with the pipe already at EOF: still an error, never an end.
  const writable = await btrfs.sendInChunks(vol, { reads: { size: SIZE } });
  let ended = false;
  writable.stream.on('end', () => (ended = true));
  await assert.rejects(chunksOf(writable.stream), /is not read-only/);
  await assert.rejects(writable.done, /is not read-only/);
  assert.equal(ended, false);
});

test('read into chunks: a send killed midway fails the stream with how it died, never ends it', rootOnly, async (t) => {
  const { s1 } = await sourceWithSnapshot(t, 8);
  const handle = await btrfs.sendInChunks(s1, { reads: { size: SIZE } });
  let ended = false;
  handle.stream.on('end', () => (ended = true));
  const reading = (async () => {
    let bytes = 0;
    for await (const chunk of handle.stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      // Slow enough that btrfs is still sending when it is killed.
      await sleep(20);
    }
    return bytes;
  })();
  let pids: number[] = [];
  for (let i = 0; i < 100 && pids.length === 0; i++) {
    await sleep(10);
    pids = sendChildren();
  }
  assert.equal(pids.length, 1, 'one btrfs send child');
  await sleep(100);
  process.kill(pids[0]!, 'SIGKILL');
  await assert.rejects(reading, (err: unknown) => {
    assert.ok(err instanceof BtrfsCommandError);
    assert.equal(err.code, 'btrfs_failed');
    assert.equal(err.signal, 'SIGKILL');
    assert.match(err.message, /SIGKILL/);
    return true;
  });
  await assert.rejects(handle.done, { signal: 'SIGKILL' });
  assert.equal(ended, false);
});

test('read into chunks: abort and an early close stop btrfs send and leave no descriptor open', rootOnly, async (t) => {
  const { s1 } = await sourceWithSnapshot(t, 4);
  const before = openFds();

  const controller = new AbortController();
  const aborted = await btrfs.sendInChunks(s1, { signal: controller.signal, reads: { size: SIZE } });
  // Read one chunk, then stop reading: btrfs send blocks on the full pipe until it is killed.
  for await (const chunk of aborted.stream as AsyncIterable<Buffer>) {
    assert.equal(chunk.length, SIZE);
    break;
  }
  controller.abort();
  await assert.rejects(aborted.done, (err: unknown) => err instanceof BtrfsCommandError && err.code === 'btrfs_cancelled');

  const closed = await btrfs.sendInChunks(s1, { reads: { size: SIZE } });
  const reader = closed.stream[Symbol.asyncIterator]();
  await reader.next();
  await sleep(200);
  await reader.return?.();
  await assert.rejects(closed.done, /consumer closed the send stream/);

  const whole = await btrfs.sendInChunks(s1, { reads: { size: SIZE } });
  await chunksOf(whole.stream);
  await whole.done;

  await sleep(50);
  assert.equal(openFds(), before, 'every pipe end closed');
  assert.deepEqual(sendChildren(), []);
});
