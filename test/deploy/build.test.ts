/**
 * The build (packaging/build.mjs) and how bin/snapferry.js chooses what to run: dist/ is the CLI's entry, its chunks and
 * every worker the code starts by URL side by side, importing nothing but each other, node's modules and the runtime
 * dependencies; a checkout
 * runs dist/ while it is a build of its sources, and the sources through tsx once one changes or when there is none.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { buildDist } from '../../packaging/build.mjs';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SOURCE_DIRS = ['bin', 'client', 'core', 'server'];

/** A copy of the command's sources, with the project's package.json and node_modules, to build and change freely. */
async function copySources(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-build-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  for (const sub of SOURCE_DIRS) await fs.cp(path.join(ROOT, sub), path.join(dir, sub), { recursive: true });
  await fs.copyFile(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  await fs.symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

/** Every `new URL('./NAME', import.meta.url)` in the code: files it loads at run time beside the module. */
async function urlsBesideModules(root: string): Promise<{ file: string; name: string }[]> {
  const found: { file: string; name: string }[] = [];
  for (const sub of ['client', 'core', 'server']) {
    for (const rel of await fs.readdir(path.join(root, sub), { recursive: true })) {
      if (!/\.(ts|mjs)$/.test(rel)) continue;
      const text = await fs.readFile(path.join(root, sub, rel), 'utf8');
      for (const m of text.matchAll(/new URL\(\s*['"]\.\/([^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g)) found.push({ file: path.join(sub, rel), name: m[1]! });
    }
  }
  return found;
}

test('dist/ has every file the code loads by URL beside the bundle, and a worker added by its name is bundled too', async (t) => {
  const root = await copySources(t);
  // A new worker, as another module would add one: found by its name alone.
  await fs.writeFile(path.join(root, 'core', 'wire', 'probe-worker.mjs'), "import { parentPort } from 'node:worker_threads';\nparentPort?.postMessage('probe');\n");
  const dist = await buildDist(root);

  const urls = await urlsBesideModules(root);
  assert.ok(urls.some((u) => u.name === 'compression-worker.mjs'), 'the compression pool starts its worker by URL');
  for (const { file, name } of urls) assert.ok(existsSync(path.join(dist, name)), `${file} loads ./${name} beside itself: dist/${name} is missing`);
  assert.ok(existsSync(path.join(dist, 'probe-worker.mjs')), 'core/**/NAME-worker.mjs is bundled to dist/NAME-worker.mjs');
  assert.ok(existsSync(path.join(dist, 'THIRD-PARTY-LICENSES.md')));
});

test('the bundle imports only node modules, the runtime dependencies, which stay outside it, and its own chunks', async (t) => {
  const root = await copySources(t);
  const dist = await buildDist(root);
  const { dependencies } = JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const files = (await fs.readdir(dist)).filter((f) => f.endsWith('.mjs'));
  let all = '';
  for (const file of files) {
    const text = await fs.readFile(path.join(dist, file), 'utf8');
    all += text;
    const imported = new Set([
      ...[...text.matchAll(/^\s*import\s*(?:[^'"]*?\s*from\s*)?["']([^"']+)["']/gm)].map((m) => m[1]!),
      // A command's action imports its side when it runs: code splitting makes that a chunk of its own.
      // (JSDoc's `import('../types.js').T` in bundled packages is no import: only esbuild's own "./" ones are read.)
      ...[...text.matchAll(/\bimport\("(\.\/[^"]+)"\)/g)].map((m) => m[1]!),
    ]);
    for (const spec of imported) {
      if (spec.startsWith('./')) {
        assert.ok(files.includes(spec.slice(2)), `dist/${file} imports ${spec}, which is not in dist/`);
        continue;
      }
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      assert.ok(spec.startsWith('node:') || pkg in dependencies, `dist/${file} imports ${spec}, which is neither node's nor a runtime dependency`);
    }
  }
  assert.match(all, /from "zstd-napi\/binding\.js"/, 'the native addon stays outside the bundle');
  assert.doesNotMatch(all, /from "(commander|hono|zod|@tus\/server)"/, 'the pure-JS packages are bundled in');
});

test('a checkout runs dist/ while it matches the sources, and the sources through tsx when one changed or dist/ is gone', async (t) => {
  const root = await copySources(t);
  const dist = await buildDist(root);
  // Mark the build: a dist/cli.mjs that says so, with the build's own key of the sources kept.
  await fs.writeFile(path.join(dist, 'cli.mjs'), "console.log('ran dist');\n");
  const run = () => execa('node', [path.join(root, 'bin', 'snapferry.js'), 'push', '--help'], { reject: false });

  const current = await run();
  assert.equal(current.stdout.trim(), 'ran dist', current.stderr);

  const units = path.join(root, 'core', 'units.ts');
  await fs.appendFile(units, '\n');
  const changed = await run();
  assert.equal(changed.exitCode, 0, changed.stderr);
  assert.match(changed.stdout, /Usage: snapferry push/, 'a changed source runs from the sources');

  await fs.rm(dist, { recursive: true });
  const none = await run();
  assert.equal(none.exitCode, 0, none.stderr);
  assert.match(none.stdout, /Usage: snapferry push/);
  assert.ok(!existsSync(dist), 'running the command builds nothing');
});
