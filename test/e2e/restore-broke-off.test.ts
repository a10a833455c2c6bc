/**
 * A restore answer that fails while it goes out (here its btrfs send killed mid-stream) breaks the connection off:
 * the client sees a cut, with nothing after the last frame sent, and the server says so in one line of its log.
 * Before, @hono/node-server printed the raw stack on serve's stderr (no JSON line of the log) and wrote
 * "Error: ..." after the frames already sent, which a client read as a damaged frame header.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { routes } from '../../core/protocol.ts';
import { FrameParser } from '../../core/wire/index.ts';
import { ChildProcesses, freePort } from './processes.ts';
import { createPair, recordingReporter } from './harness.ts';

const CHUNK = 64 * 1024;

test("a restore answer whose btrfs send dies breaks off: no bytes after the frames, one line in the server's log", { ...rootOnly, timeout: 180_000 }, async (t) => {
  const children = new ChildProcesses(t);
  const pair = await createPair(t, { fillMB: 1, seed: 'broke-off' });
  await fs.writeFile(path.join(pair.source, 'random.bin'), crypto.randomBytes(48 * 1024 * 1024));
  const s1 = await pair.snapshot('s1');
  const server = await children.serve({ root: path.join(pair.server.mountPoint, 'root2'), port: await freePort() });
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0 }, recordingReporter());

  const res = await fetch(`${server.url}${routes.restoreStream('v', 's1', { chunkSize: CHUNK })}`);
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const got: Buffer[] = [];
  got.push(Buffer.from((await reader.read()).value!));
  // The answer's own btrfs send, a child of serve: killed while the client has read only the start.
  const sends = (await execa('pgrep', ['-P', String(server.pid), '-f', 'btrfs send'], { reject: false })).stdout.split('\n').filter(Boolean);
  assert.equal(sends.length, 1, 'one btrfs send runs for the answer');
  process.kill(Number(sends[0]), 'SIGKILL');
  let cut = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      got.push(Buffer.from(value));
    }
  } catch {
    cut = true;
  }
  const body = Buffer.concat(got);
  assert.ok(body.length < 48 * 1024 * 1024, 'the answer did not go out whole');
  assert.doesNotMatch(body.subarray(-200).toString('latin1'), /Error: /, 'nothing but frames in the body');
  // What came verifies as frames up to the cut, with no end frame: the client resumes from its last whole frame.
  const parser = new FrameParser({ chunkSize: CHUNK });
  parser.push(body);
  assert.throws(() => parser.finish(), /stream_truncated|stream ended/);
  assert.ok(cut || body.length > 0);

  const line = await server.waitForStderr(/^\{[^\n]*"msg":"a restore stream broke off[^\n]*$/m, 10_000);
  assert.match(line[0], /"snapshot":"s1"/);
  const stray = server.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{') && !/^snapferry serving/.test(l));
  assert.deepEqual(stray, [], 'every line of serve\'s stderr is a line of its log');
});
