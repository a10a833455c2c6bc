/**
 * The README's first command ends in `npm run demo` (bin/demo.sh): it must keep working as the code changes, since a
 * new user's first look is this script. It runs whole here, as root on real btrfs, through the chaos proxy's cuts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

test('the demo pushes through a cut link, verifies by digest, and both snapshots arrive identical', rootOnly, async () => {
  const run = await execa('bash', [path.join(ROOT, 'bin/demo.sh')], { cwd: ROOT, all: true, reject: false, timeout: 240_000 });
  assert.equal(run.exitCode, 0, run.all);
  assert.match(run.all ?? '', /verified: home\.2 identical \(\d+ entries/, run.all);
  assert.match(run.all ?? '', /home\.1: identical, ro=true/, run.all);
  assert.match(run.all ?? '', /home\.2: identical, ro=true/, run.all);
});
