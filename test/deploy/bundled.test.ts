/**
 * The command runs from an esbuild bundle of its sources (bin/bundled.js): built once, used again while the sources
 * stay as they are, built anew when one changes, and the command still runs when no bundle can be made.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { bundleFor, runBundled, sourceKey } from '../../bin/bundled.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-bundle-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A copy of the command's sources under `dir`, with the project's package.json and node_modules: its files are
 * newer than any bundle made before, so its bundle is one this test makes.
 */
async function copySources(dir: string): Promise<string> {
  const root = path.join(dir, 'src');
  for (const sub of ['bin', 'client', 'core', 'server']) await fs.cp(path.join(ROOT, sub), path.join(root, sub), { recursive: true });
  await fs.copyFile(path.join(ROOT, 'package.json'), path.join(root, 'package.json'));
  await fs.symlink(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
  return root;
}

test('a bundle is built once, used again while the sources stay the same, and built anew after a change', async (t) => {
  const dir = await tempDir(t);
  const root = await copySources(dir);
  const cache = path.join(dir, 'cache');

  const first = await bundleFor(cache, root);
  assert.ok(existsSync(path.join(path.dirname(first), 'compression-worker.mjs')), 'the worker is bundled beside it');
  assert.ok(existsSync(path.join(path.dirname(first), 'hash-worker.mjs')), 'the tree digest\'s worker too');
  const built = (await fs.stat(first)).mtimeMs;
  await new Promise((resolve) => setTimeout(resolve, 20));
  const again = await bundleFor(cache, root);
  assert.equal(again, first);
  assert.equal((await fs.stat(again)).mtimeMs, built, 'not built a second time');

  await fs.appendFile(path.join(root, 'core', 'units.ts'), '\n');
  const changed = await bundleFor(cache, root);
  assert.notEqual(changed, first, 'a changed source makes a new bundle');
  assert.ok(existsSync(first), 'the older one stays for a while: a command started from it may still load its worker');
});

test('the command runs from its bundle, and through tsx when there is none', async (t) => {
  const dir = await tempDir(t);
  const root = await copySources(dir);
  // The cache lies in the project's node_modules (through the link), where the bundle finds its dependencies.
  const bundle = path.join(ROOT, 'node_modules', '.cache', 'snapferry', sourceKey(root));
  t.after(() => fs.rm(bundle, { recursive: true, force: true }));
  assert.ok(!existsSync(bundle), 'no bundle of the copied sources yet');
  const run = (env: Record<string, string> = {}) => execa('node', [path.join(root, 'bin', 'snapferry.js'), 'push', '--help'], { env, reject: false });

  const unbundled = await run({ SNAPFERRY_NO_BUNDLE: '1' });
  assert.equal(unbundled.exitCode, 0, unbundled.stderr);
  assert.match(unbundled.stdout, /Usage: snapferry push/);
  assert.ok(!existsSync(bundle), 'SNAPFERRY_NO_BUNDLE=1 makes no bundle');

  const bundled = await run();
  assert.equal(bundled.exitCode, 0, bundled.stderr);
  assert.match(bundled.stdout, /Usage: snapferry push/);
  assert.ok(existsSync(path.join(bundle, 'cli.mjs')), 'the command made the bundle of its sources, and ran');

  // A cache folder that cannot be made (its parent is a file): no bundle, and bin/snapferry.js runs the sources.
  await fs.writeFile(path.join(dir, 'file'), '');
  assert.equal(await runBundled(path.join(dir, 'file', 'cache')), false);
});
