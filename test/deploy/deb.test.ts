/**
 * The Debian package of `npm run package:deb`, as dpkg would install it (extracted with dpkg-deb -x into a folder
 * instead of /, so that the test changes nothing on the machine; CI installs it for real with dpkg -i): its control
 * file, what it holds and leaves out, units that run the binary it installs, and the installed command serving and
 * pushing with plain node, its compression workers included.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { buildDeb, EXAMPLES, INSTALLED_BIN } from '../../packaging/deb.mjs';
import { Status } from '../../core/protocol.ts';
import { beforeTakeDown, rootOnly } from '../fixtures/btrfs.ts';
import { assertReceived, createPair } from '../e2e/harness.ts';
import { builtCopy, tempDir } from './package-copy.ts';

const UNITS = 'usr/lib/systemd/system';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});
let built: Promise<{ deb: string; into: string }> | undefined;

/** The package built from a copy of this checkout, and the folder it is extracted into: once for the file. */
function extracted(): Promise<{ deb: string; into: string }> {
  built ??= (async () => {
    const hook = { after: (fn: () => Promise<void>) => void cleanups.push(fn) };
    const root = await builtCopy(hook);
    const deb = await buildDeb(root, await tempDir(hook, 'deb'));
    const into = await tempDir(hook, 'deb-root');
    await execa('dpkg-deb', ['-x', deb, into]);
    return { deb, into };
  })();
  return built;
}

test('the control file: name, version, this machine\'s architecture, nodejs of engines and the tools it runs', async () => {
  const { deb } = await extracted();
  const field = async (name: string) => (await execa('dpkg-deb', ['-f', deb, name])).stdout.trim();
  const pkg = JSON.parse(await fs.readFile(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string; engines: { node: string } };
  assert.equal(await field('Package'), 'snapferry');
  assert.equal(await field('Version'), pkg.version);
  assert.equal(await field('Architecture'), (await execa('dpkg', ['--print-architecture'])).stdout.trim(), 'it holds native addons built here');
  const depends = (await field('Depends')).split(/,\s*/);
  assert.deepEqual(depends, [`nodejs (>= ${pkg.engines.node.replace('>=', '')})`, 'btrfs-progs', 'attr', 'util-linux']);
});

test('the package: the command in /usr/bin, runtime modules only, no tests or sources, units that run /usr/bin/snapferry', async (t) => {
  const { deb, into } = await extracted();
  const listing = (await execa('dpkg-deb', ['-c', deb])).stdout;
  const files = listing.split('\n').map((l) => l.replace(/^.*?\.\//, '').replace(/ -> .*$/, ''));
  assert.deepEqual(files.filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts')), [], 'no TypeScript sources');
  assert.deepEqual(files.filter((f) => /(^|\/)test\//.test(f) && !f.includes('node_modules/')), [], 'no tests');
  const modules = await fs.readdir(path.join(into, 'usr/lib/snapferry/node_modules'));
  for (const devOnly of ['tsx', 'esbuild', 'typescript', 'eslint', 'commander']) assert.ok(!modules.includes(devOnly), `${devOnly} is in the package`);
  assert.ok(modules.includes('zstd-napi'));
  // What runs, not what built it: no node-gyp build tree, zstd sources, types or install-time packages.
  const shipped = files.filter((f) => f.startsWith('usr/lib/snapferry/node_modules/') && !f.endsWith('/'));
  assert.deepEqual(shipped.filter((f) => /\.(o|a|c|h|cc|cpp|S|gyp|gypi|mk|d|d\.ts|stamp)$|(^|\/)(Makefile|ar-file-list)$|\/obj\.target\//.test(f)), [], 'build files');
  for (const installOnly of ['@types', 'prebuild-install', 'node-addon-api', 'tar-fs', 'rc']) assert.ok(!modules.includes(installOnly), `${installOnly} is in the package`);
  assert.deepEqual(shipped.filter((f) => f.endsWith('.node')).map((f) => f.replace(/^.*node_modules\//, '')).filter((f) => f.startsWith('zstd-napi/')), ['zstd-napi/build/Release/binding.node']);
  const buildPaths = await execa('grep', ['-rlF', '-e', await fs.realpath(path.resolve(import.meta.dirname, '../../node_modules')), '-e', '/.cache/node-gyp', path.join(into, 'usr/lib/snapferry/node_modules')], { reject: false });
  assert.equal(buildPaths.stdout, '', 'files that name the paths the addons were built in');

  assert.equal(INSTALLED_BIN, '/usr/bin/snapferry');
  const bin = path.join(into, INSTALLED_BIN);
  assert.equal(await fs.realpath(bin), path.join(into, 'usr/lib/snapferry/bin/snapferry.js'));
  for (const example of ['server.example.yaml', 'client.example.yaml', 'nginx-snapferry.conf']) assert.ok(existsSync(path.join(into, EXAMPLES, example)));
  assert.match(await fs.readFile(path.join(into, 'usr/share/doc/snapferry/copyright'), 'utf8'), /License: MIT[\s\S]*MIT License\n\nCopyright \(c\) 2026/, 'the copyright file holds the license');

  const units = (await fs.readdir(path.join(into, UNITS))).sort();
  assert.deepEqual(units, ['snapferry-client.service', 'snapferry-client.timer', 'snapferry-server.service']);
  for (const unit of units.filter((u) => u.endsWith('.service'))) {
    const execs = [...(await fs.readFile(path.join(into, UNITS, unit), 'utf8')).matchAll(/^Exec\w+=(\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(execs, [INSTALLED_BIN], `${unit} runs the packaged command`);
  }

  // systemd-analyze checks that ExecStart's program exists: the same units, pointed at the extracted command.
  const probe = await execa('systemd-analyze', ['--version'], { reject: false });
  if (probe.exitCode !== 0) return t.diagnostic('systemd-analyze is not installed: units not verified');
  const dir = await tempDir(t, 'units');
  for (const unit of units) await fs.writeFile(path.join(dir, unit), (await fs.readFile(path.join(into, UNITS, unit), 'utf8')).replaceAll(INSTALLED_BIN, bin));
  const verify = await execa('systemd-analyze', ['verify', ...units.map((u) => path.join(dir, u))], { reject: false });
  assert.equal(`${verify.stdout}${verify.stderr}`.trim(), '', 'systemd-analyze verify has findings');
  assert.equal(verify.exitCode, 0);
});

test('the examples are where minimized images keep them, and the README\'s steps copy them from there and write tokens under /etc/snapferry', async () => {
  const { into } = await extracted();
  // dpkg's path-exclude=/usr/share/doc/* (Ubuntu minimal, Docker images) leaves only the copyright file there.
  assert.equal(EXAMPLES, 'usr/share/snapferry/examples');
  assert.deepEqual((await fs.readdir(path.join(into, 'usr/share/doc/snapferry'), { recursive: true })).sort(), ['README.md', 'THIRD-PARTY-LICENSES.md', 'copyright']);
  const readme = await fs.readFile(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
  assert.deepEqual(readme.match(/\/usr\/share\/doc\/snapferry\S*/g) ?? [], [], 'the README names files under /usr/share/doc/snapferry');
  const named = [...readme.matchAll(new RegExp(`/${EXAMPLES}/([\\w.-]+)`, 'g'))].map((m) => m[1]!);
  assert.ok(named.length >= 3, 'the README copies the examples from the package');
  for (const example of named) assert.ok(existsSync(path.join(into, EXAMPLES, example)), `${example} is not in the package`);
  // The service steps: a token is a secret, written where only root reads it, never beside the examples.
  const service = readme.slice(readme.indexOf('## Run it as a service'), readme.indexOf('\n## ', readme.indexOf('## Run it as a service') + 1));
  const tokenFiles = [...service.matchAll(/--token-file\s+(\S+)/g)].map((m) => m[1]!);
  assert.ok(tokenFiles.length > 0);
  for (const file of tokenFiles) assert.match(file, /^\/etc\/snapferry\//, `--token-file ${file}`);
  assert.doesNotMatch(service, /^cd /m, 'the steps run from no particular folder');
});

test('the packaged command serves and pushes with plain node: the server answers /v1/status, workers compress', rootOnly, async (t) => {
  const { into } = await extracted();
  const bin = path.join(into, INSTALLED_BIN);
  // Given before the pair, so that serve is stopped before its filesystem's take-down (it holds files there).
  const closeFirst = beforeTakeDown(t);
  const pair = await createPair(t, { fillMB: 4 });
  const s1 = await pair.snapshot('s1');

  const serve = execa(bin, ['serve', '--root', pair.root, '--listen', '127.0.0.1:0', '--no-auth'], { reject: false, buffer: false, cwd: into });
  closeFirst(async () => {
    serve.kill('SIGTERM');
    await serve;
  });
  const url = await new Promise<string>((resolve, reject) => {
    let said = '';
    serve.stderr!.setEncoding('utf8').on('data', (s: string) => {
      said += s;
      const m = /snapferry serving .* on (http:\/\/\S+)/.exec(said);
      if (m) resolve(m[1]!);
    });
    void serve.then(() => reject(new Error(`serve exited: ${said}`)));
  });
  const status = Status.parse(await (await fetch(`${url}/v1/status`)).json());
  assert.equal(status.service, 'snapferry');
  assert.equal(status.snapshots, 0);

  // --compress 3: every frame goes through the compression workers, which load dist/compression-worker.mjs.
  const pushed = await execa(bin, ['push', '--server', url, '--volume', 'home', '--compress', '3', s1], { reject: false, cwd: into });
  assert.equal(pushed.exitCode, 0, pushed.stderr);
  await assertReceived(s1, pair.receivedPath('home', 's1'));
});
