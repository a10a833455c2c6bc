/**
 * What restore downloads may hold of a real server (a serve process of its own, so that its memory is its own): a
 * reader that does not read holds a frame or two of memory, not the stream that btrfs send can make meanwhile; the
 * restore streams one client may have at once are capped (429 with Retry-After); and a download whose reader takes
 * nothing for the idle timeout is ended, its btrfs send with it, while a slow reader that reads goes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { routes } from '../../core/protocol.ts';
import { ChildProcesses, freePort, type ServeProcess } from './processes.ts';
import { assertReceived, createPair, recordingReporter, until } from './harness.ts';
import { restore } from '../../client/restore/restore.ts';
import { execa } from 'execa';

const MiB = 1024 * 1024;
const CHUNK = 16 * MiB;

async function rssMiB(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]) / 1024;
}

async function sends(pid: number): Promise<number> {
  return (await execa('pgrep', ['-P', String(pid), '-f', 'btrfs send'], { reject: false })).stdout.split('\n').filter(Boolean).length;
}

/** A GET of the restore stream whose answer is never read past its headers (the response is paused). */
function stalledGet(url: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; request: http.ClientRequest; response?: http.IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, (res) => {
      if (res.statusCode === 200) {
        res.pause();
        resolve({ status: 200, headers: res.headers, body: '', request, response: res });
        return;
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, request }));
    });
    request.on('error', reject);
  });
}

/** A pushed snapshot of 64 MiB that does not compress, on a serve process of its own with `args` (or those made for its root). */
async function served(t: { after(fn: () => Promise<void> | void): void }, args: string[] | ((root: string) => Promise<string[]>)): Promise<{ server: ServeProcess; url: string }> {
  const children = new ChildProcesses(t);
  const pair = await createPair(t, { fillMB: 1, seed: 'limits' });
  await fs.writeFile(path.join(pair.source, 'random.bin'), crypto.randomBytes(64 * MiB));
  const s1 = await pair.snapshot('s1');
  const server = await children.serve({ root: pair.root, port: await freePort(), args: typeof args === 'function' ? await args(pair.root) : args });
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0 }, recordingReporter());
  return { server, url: `${server.url}${routes.restoreStream('v', 's1', { chunkSize: CHUNK })}` };
}

test('readers that never read hold a frame or two each of the server\'s memory, not the stream btrfs send makes meanwhile', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const { server, url } = await served(t, []);
  const before = await rssMiB(server.pid);
  // As many as one client may have at once (server/restore-slots.ts).
  const readers = 2;
  const gets: Awaited<ReturnType<typeof stalledGet>>[] = [];
  for (let i = 0; i < readers; i++) gets.push(await stalledGet(url));
  t.after(() => gets.forEach((g) => g.request.destroy()));
  assert.deepEqual(gets.map((g) => g.status), Array(readers).fill(200));
  // Long enough for a server without backpressure to have read most of the 64 MiB of each send into memory.
  await sleep(8000);
  const grown = (await rssMiB(server.pid)) - before;
  // The frame going out, the one made ahead, what compressing the next takes, and the garbage GC has not taken back:
  // 72 MiB a reader is generous (before, each held about 88 MiB: five frames).
  assert.ok(grown < readers * 72, `serve grew ${grown.toFixed(0)} MiB for ${readers} readers that do not read`);
});

test('a third restore stream of one client at once is refused with 429 and Retry-After; a download nobody reads ends after the idle timeout, its btrfs send with it; a slow reader goes on', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const { server, url } = await served(t, ['--idle-timeout', '4s']);
  const first = [await stalledGet(url), await stalledGet(url)];
  t.after(() => first.forEach((g) => g.request.destroy()));
  assert.deepEqual(first.map((g) => g.status), [200, 200]);
  const third = await stalledGet(url);
  assert.equal(third.status, 429, third.body);
  assert.equal(third.headers['retry-after'], '15');
  assert.equal((JSON.parse(third.body) as { error: { code: string } }).error.code, 'too_many_restores');
  assert.equal(await sends(server.pid), 2);

  const started = Date.now();
  await until('the unread downloads ended', async () => (await sends(server.pid)) === 0, 30_000);
  assert.ok(Date.now() - started >= 3000, 'not before the idle timeout');
  await server.waitForStderr(/a restore download made no progress for the idle timeout/, 5000);

  // Their slots are free again; a reader that takes 64 KiB every 100 ms is slow, not idle, and is not ended.
  const slow = await stalledGet(url);
  t.after(() => slow.request.destroy());
  assert.equal(slow.status, 200);
  let read = 0;
  let closed = false;
  slow.response!.once('close', () => (closed = true));
  for (const end = Date.now() + 10_000; Date.now() < end; ) {
    read += (slow.response!.read(64 * 1024) as Buffer | null)?.length ?? 0;
    await sleep(100);
  }
  assert.ok(read > 0, 'it read');
  assert.equal(closed, false, 'still open after more than twice the idle timeout');
  assert.equal(server.stderr.match(/a restore download made no progress/g)?.length, 2, 'the two unread ones only');
});

test('restores.perClient of the config file takes effect: with 1, a second restore stream of one client at once is refused with 429', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const { server, url } = await served(t, async (root) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-restores-config-'));
    t.after(() => fs.rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'server.yaml');
    await fs.writeFile(file, `root: ${root}\nrestores: { perClient: 1 }\n`);
    return ['--config', file];
  });
  const first = await stalledGet(url);
  t.after(() => first.request.destroy());
  assert.equal(first.status, 200);
  const second = await stalledGet(url);
  assert.equal(second.status, 429, second.body);
  assert.equal(second.headers['retry-after'], '15');
  assert.match(second.body, /client default already has 1 restore streams from the server, the limit is 1 \(429\)/);
  assert.equal(await sends(server.pid), 1);
});

test('a restore refused for too many streams (429) waits out Retry-After and goes on once a stream ends', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 1, seed: 'limits-retry' });
  // More than the buffers on the way take: the held stream stays open while nobody reads it.
  await fs.writeFile(path.join(pair.source, 'random.bin'), crypto.randomBytes(32 * MiB));
  const server = await pair.startServer({ restore: { maxPerClient: 1 } });
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0 }, recordingReporter());
  const held = await stalledGet(`${server.url}${routes.restoreStream('v', 's1', { chunkSize: 64 * 1024 })}`);
  assert.equal(held.status, 200);
  const dest = path.join(pair.client.mountPoint, 'restored');
  await fs.mkdir(dest);
  const report = recordingReporter();
  const restoring = restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: dest, chunkSize: 64 * 1024, backoff: { baseMs: 50, maxMs: 200 }, verify: false }, report);
  await until('the restore refused once', () => report.notes.some((n) => /too_many_restores|restore streams/.test(n)), 20_000).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}: ${report.notes.join(' / ')}`);
  });
  held.request.destroy();
  const result = await restoring;
  assert.equal(result.restored, true);
  assert.match(report.notes.join('\n'), /client default already has 1 restore streams from the server, the limit is 1 \(429\)[^\n]*resuming from frame 0 in 1[45]\.\d s/);
  await assertReceived(s1, path.join(dest, 's1'));
});
