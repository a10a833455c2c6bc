/**
 * `npm pack` ships what runs and nothing else, and the tarball installs (`npm install -g`) into a prefix where the
 * command runs with plain node: no tsx, no sources, no esbuild, nothing written under the install.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { ROOT, builtCopy, tempDir } from './package-copy.ts';

interface PackResult {
  filename: string;
  files: { path: string }[];
}

async function pack(t: { after(fn: () => Promise<void>): void }): Promise<{ tarball: string; files: string[] }> {
  const root = await builtCopy(t);
  const out = await tempDir(t, 'pack');
  // dist/ is built already (npm pack would run `prepare`, the same build, again).
  const { stdout } = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', out], { cwd: root });
  const [result] = JSON.parse(stdout) as PackResult[];
  return { tarball: path.join(out, result!.filename), files: result!.files.map((f) => f.path).sort() };
}

test('the tarball holds dist/, the bin entry, deploy/ and the README: no tests, no TypeScript sources', async (t) => {
  const { files } = await pack(t);
  for (const needed of ['package.json', 'README.md', 'LICENSE', 'bin/snapferry.js', 'dist/cli.mjs', 'dist/compression-worker.mjs', 'dist/THIRD-PARTY-LICENSES.md', 'deploy/server.example.yaml', 'deploy/systemd/snapferry-server.service', 'nginx/snapferry.conf']) {
    assert.ok(files.includes(needed), `the tarball lacks ${needed}: ${files.join(' ')}`);
  }
  const unwanted = files.filter((f) => f.startsWith('test/') || f.endsWith('.ts') || /^(core|client|server|packaging)\//.test(f) || f === 'bin/source-key.js');
  assert.deepEqual(unwanted, [], 'only what runs is shipped');
});

test('npm install -g of the tarball gives a command that runs with plain node, with no tsx to fall back on', async (t) => {
  const { tarball } = await pack(t);
  const prefix = await tempDir(t, 'prefix');
  // --ignore-scripts: zstd-napi's install script compiles zstd (a minute) where no prebuilt binary can be fetched;
  // the same version's addon, built by `npm ci` here, is copied in instead. Everything else is npm's own install.
  await execa('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', tarball]);
  const installed = path.join(prefix, 'lib', 'node_modules', 'snapferry');
  const addon = path.join('node_modules', 'zstd-napi', 'build', 'Release');
  await fs.cp(path.join(ROOT, addon, 'binding.node'), path.join(installed, addon, 'binding.node'));

  const deps = (await fs.readdir(path.join(installed, 'node_modules'))).sort();
  for (const devOnly of ['tsx', 'esbuild', 'typescript', 'commander', 'hono']) assert.ok(!deps.includes(devOnly), `${devOnly} was installed`);
  const tsx = await execa('node', ['-e', "require.resolve('tsx')"], { cwd: installed, reject: false });
  assert.notEqual(tsx.exitCode, 0, 'tsx resolves from the install');

  const before = await fs.readdir(installed, { recursive: true });
  const help = await execa(path.join(prefix, 'bin', 'snapferry'), ['--help'], { reject: false, cwd: prefix });
  assert.equal(help.exitCode, 0, help.stderr);
  assert.match(help.stdout, /Usage: snapferry/);
  const push = await execa(path.join(prefix, 'bin', 'snapferry'), ['push', '--help'], { reject: false, cwd: prefix });
  assert.match(push.stdout, /Usage: snapferry push/, push.stderr);
  assert.deepEqual(await fs.readdir(installed, { recursive: true }), before, 'running the command wrote under the install');
  assert.ok(!existsSync(path.join(installed, 'bin', 'cli.ts')));
});
