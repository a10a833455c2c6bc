/**
 * The installed command keeps V8's young generation at its start (bin/snapferry.js, --semi-space-growth-factor=1):
 * left to grow, it doubled while the code loaded, up to 16 MiB a semi-space, 32 MiB of RSS in serve and in push that
 * their data (Buffers, outside the heap) never needed (docs/performance.md, issue 22). Loading a command's help already
 * made it grow once; it must not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execa } from 'execa';
import { SNAPFERRY_BIN } from '../e2e/processes.ts';

const HOOK = path.join(import.meta.dirname, 'new-space-size.mjs');
/** Both semi-spaces at V8's start on 64-bit: 1 MiB each. */
const START = 2 * 1024 * 1024;

for (const command of ['serve', 'push']) {
  test(`${command} --help through bin/snapferry.js: the young generation stays at its start`, async () => {
    const run = await execa('node', ['--import', HOOK, SNAPFERRY_BIN, command, '--help'], { reject: false });
    assert.equal(run.exitCode, 0, run.stderr);
    const m = /new_space (\d+)/.exec(run.stderr);
    assert.ok(m, `the hook reported nothing: ${run.stderr}`);
    assert.ok(Number(m[1]) <= START, `new space is ${Number(m[1]) / 2 ** 20} MiB after loading ${command}, not at most ${START / 2 ** 20}`);
  });
}
