/**
 * core/btrfs/own-pipe.ts makes btrfs send's pipe with a mkfifo process. A push's uploads, progress and timers run on
 * the event loop, so the wait for that process must not stop it: with mkfifo slowed down (a stand-in first on PATH
 * that sleeps, then runs the real one), a timer due meanwhile fires before the pipe is there. And where mkfifo
 * fails, the reason comes back and nothing is left in the temporary directory, and a send falls back to node's reads.
 * No root needed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, readdirSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { BtrfsCommandError, sendInChunks } from '../../core/btrfs/index.ts';
import { openOwnPipe } from '../../core/btrfs/own-pipe.ts';

const REAL_MKFIFO = execFileSync('sh', ['-c', 'command -v mkfifo'], { encoding: 'utf8' }).trim();

/**
 * A `mkfifo` that runs `body` (sh), first on PATH and with TMPDIR in a folder of its own, for this test only; returns
 * the folder TMPDIR points to.
 */
function standInMkfifo(t: TestContext, body: string): { bin: string; tmp: string } {
  const bin = mkdtempSync(join(tmpdir(), 'snapferry-own-pipe-bin-'));
  const tmp = mkdtempSync(join(tmpdir(), 'snapferry-own-pipe-tmp-'));
  writeFileSync(join(bin, 'mkfifo'), `#!/bin/sh\n${body}\n`);
  chmodSync(join(bin, 'mkfifo'), 0o755);
  const saved = { PATH: process.env.PATH, TMPDIR: process.env.TMPDIR };
  process.env.PATH = `${bin}:${saved.PATH ?? ''}`;
  process.env.TMPDIR = tmp;
  t.after(() => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    rmSync(bin, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  });
  return { bin, tmp };
}

describe('openOwnPipe', () => {
  it('does not stop the event loop while mkfifo runs: a timer due meanwhile fires before the pipe is made', async (t) => {
    const { bin, tmp } = standInMkfifo(t, `touch "$(dirname "$0")/ran"; sleep 0.4; exec ${REAL_MKFIFO} "$@"`);
    let fired = false;
    const timer = setTimeout(() => (fired = true), 20);
    t.after(() => clearTimeout(timer));
    const pipe = await openOwnPipe();
    try {
      assert.ok(existsSync(join(bin, 'ran')), 'the slowed mkfifo made the pipe');
      assert.equal(fired, true, 'the timer fired while mkfifo ran');
      // And it is a working pipe, with nothing left of the FIFO on disk.
      writeSync(pipe.writeFd, Buffer.from('through'));
      const into = Buffer.alloc(16);
      assert.equal(into.subarray(0, readSync(pipe.readFd, into)).toString(), 'through');
      assert.deepEqual(readdirSync(tmp), []);
    } finally {
      closeSync(pipe.readFd);
      closeSync(pipe.writeFd);
    }
  });

  it('rejects with mkfifo\'s reason when it fails, leaving nothing behind; a send then falls back to node\'s reads', async (t) => {
    const { tmp } = standInMkfifo(t, 'echo "mkfifo: cannot make it here" >&2; exit 1');
    await assert.rejects(openOwnPipe(), /cannot make it here/);
    assert.deepEqual(readdirSync(tmp), []);
    const handle = await sendInChunks('/nowhere', { reads: { size: 64 * 1024 } });
    await assert.rejects(handle.done, (err: unknown) => {
      assert.ok(err instanceof BtrfsCommandError);
      assert.deepEqual(err.command, ['btrfs', 'send', '--', '/nowhere']);
      // btrfs ran and refused the path (the fallback), or is not installed here: never a failure to make the pipe.
      assert.doesNotMatch(err.message, /pipe|mkfifo/);
      return true;
    });
    assert.deepEqual(readdirSync(tmp), []);
  });
});
