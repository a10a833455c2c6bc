// `npm run build` (and `prepare`, so `npm ci` and `npm pack` run it): the command's code as it ships, in dist/.
//
// dist/cli.mjs    bin/cli.ts and what every start needs (commander, the commands' options and help), as ESM: node
//                 loads a few files instead of ~150 modules (through tsx that took ~0.6 s of every start).
// dist/chunk-*.mjs  what a command's action imports (`await import('../../client/index.ts')`, server/index.ts) and
//                 code the entries share: esbuild's code splitting. A process loads the chunks of the one command
//                 it runs: `push` never loads hono or @tus/server, `serve` never tus-js-client (issue 22: 55 MB of
//                 RSS went to modules a command never used). Chunks sit beside the entries, not in a folder: a
//                 module in a chunk finds its worker by `new URL('./NAME-worker.mjs', import.meta.url)`, which is
//                 then the chunk's URL. Workers share chunks with the CLI too, and load only the ones they reach.
// dist/NAME.mjs   every worker thread's entry, core/**/NAME-worker.mjs: a worker is a file of its own that the code
//                 starts by URL, `new Worker(new URL('./NAME-worker.mjs', import.meta.url))`. In the sources the URL
//                 is the worker beside the module; in the bundle import.meta.url is a file of dist/, so each worker is
//                 bundled to dist/ under its own name. The naming convention is the list: a new worker needs
//                 nothing here (test/deploy/build.test.ts checks that every such URL in the sources lands in dist/).
// dist/.sources   the key of the sources bundled (bin/source-key.js): a checkout's bin/snapferry.js runs dist/ only
//                 while it matches, and the sources through tsx otherwise.
//
// dist/THIRD-PARTY-LICENSES.md  the licenses of the packages bundled in.
//
// Bundled in: every package the code imports except package.json's `dependencies`, which are what stays outside
// the bundle and is installed with the command: native addons (zstd-napi, @node-rs/crc32) cannot be bundled. The
// rest are devDependencies: loading them one file at a time from node_modules took ~0.2 s of CPU of every start
// (`snapferry --help`: 0.40 s of CPU with them outside, 0.21 s inside), and an install needs only the addons.
// A dependency that starts a worker from a file of its own (pino's `transport` option, thread-stream) cannot run
// from the bundle: use it in-process (e.g. pino-pretty as a stream) or make it a dependency.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { KEY_FILE, SOURCE_DIRS, distIsCurrent, sourceKey } from '../bin/source-key.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A worker thread's entry file, by name. */
export const WORKER_FILE = /-worker\.mjs$/;

/** Every worker entry under the source folders, by the name it has in dist/ (its file name: they must differ). */
export function workerEntries(root = ROOT) {
  const entries = {};
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (WORKER_FILE.test(entry.name)) {
        const name = entry.name.replace(/\.mjs$/, '');
        if (entries[name]) throw new Error(`two workers are named ${entry.name} (${entries[name]}, ${file}): dist/ holds them side by side, rename one`);
        entries[name] = file;
      }
    }
  };
  for (const dir of SOURCE_DIRS.filter((d) => d !== 'bin')) walk(path.join(root, dir));
  return entries;
}

/** Builds dist/ under `root` from its sources; the old dist/ is replaced only by a whole new one. */
export async function buildDist(root = ROOT) {
  const dist = path.join(root, 'dist');
  const key = sourceKey(root);
  const staging = fs.mkdtempSync(path.join(root, '.dist-'));
  try {
    fs.chmodSync(staging, 0o755);
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    const result = await build({
      entryPoints: { cli: path.join(root, 'bin', 'cli.ts'), ...workerEntries(root) },
      outdir: staging,
      // The metafile's input paths are relative to this.
      absWorkingDir: root,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      splitting: true,
      chunkNames: 'chunk-[hash]',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: Object.keys(pkg.dependencies ?? {}),
      // Bundled CommonJS packages require node's own modules: give the ESM bundle a `require` for them.
      banner: { js: "import { createRequire as __snapferryRequire } from 'node:module'; const require = __snapferryRequire(import.meta.url);" },
      metafile: true,
      // Stack traces (the server's crash log) name the TypeScript files and lines; the maps carry no sources.
      sourcemap: 'linked',
      sourcesContent: false,
      logLevel: 'warning',
    });
    fs.writeFileSync(path.join(staging, 'THIRD-PARTY-LICENSES.md'), licenses(root, Object.keys(result.metafile.inputs)));
    fs.writeFileSync(path.join(staging, KEY_FILE), `${key}\n`);
    // Moved aside, not deleted first: dist/ is missing only between two renames.
    const old = `${staging}-old`;
    if (fs.existsSync(dist)) fs.renameSync(dist, old);
    fs.renameSync(staging, dist);
    fs.rmSync(old, { recursive: true, force: true });
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  return dist;
}

/** Each bundled package (the folders under node_modules that inputs come from): name, version, license text. */
function licenses(root, inputs) {
  const dirs = new Set();
  for (const input of inputs) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) dirs.add(m[1]);
  }
  const parts = ['# Packages bundled into dist/ (cli.mjs, its chunks and the workers) and their licenses\n'];
  for (const dir of [...dirs].sort()) {
    const abs = path.resolve(root, dir);
    const { name, version, license } = JSON.parse(fs.readFileSync(path.join(abs, 'package.json'), 'utf8'));
    const file = fs.readdirSync(abs).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
    const text = file ? fs.readFileSync(path.join(abs, file), 'utf8').trim() : `(no license file in the package; its package.json says: ${license ?? "nothing"})`;
    parts.push(`## ${name} ${version} (${license})\n\n\`\`\`\n${text}\n\`\`\`\n`);
  }
  return parts.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // --if-stale (before the tests): leave a current dist/ alone, so that a second test run started beside a first
  // does not replace it under the commands the first is running.
  if (process.argv.includes('--if-stale') && distIsCurrent(ROOT, path.join(ROOT, 'dist'))) process.exit(0);
  const started = performance.now();
  const dist = await buildDist();
  console.log(`built ${path.relative(process.cwd(), dist) || dist}/ in ${Math.round(performance.now() - started)} ms: ${fs.readdirSync(dist).filter((f) => f.endsWith('.mjs')).join(', ')}`);
}
