// The command's code as one esbuild bundle, made on first use and again whenever a source file changes. Loading the
// ~150 TypeScript modules one at a time through tsx's loader hooks took about 0.6 s of every command's start (a whole
// `snapferry push --help` took 1.1 s; from the bundle it takes 0.5 s), which is most of a small incremental push.
// Dependencies stay outside the bundle and load from node_modules as usual.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The folders the command's code comes from (test/ is not part of it). */
const SOURCES = ['bin', 'client', 'core', 'server'];
/** The workers the compression and hash pools start by URL, next to the main file: bundled as entry points too. */
const WORKERS = { 'compression-worker': 'core/wire/compression-worker.mjs', 'hash-worker': 'core/tree-digest/hash-worker.mjs' };

/**
 * The path of the bundle for the sources as they are now, building it if there is none. Throws when it cannot be
 * built or stored (esbuild missing, a read-only install): the caller falls back to tsx.
 */
export async function bundleFor(cacheDir = defaultCacheDir(), root = ROOT) {
  const dir = path.join(cacheDir, sourceKey(root));
  const main = path.join(dir, 'cli.mjs');
  if (fs.existsSync(main)) return main;
  const { build } = await import('esbuild');
  fs.mkdirSync(cacheDir, { recursive: true });
  const staging = fs.mkdtempSync(path.join(cacheDir, '.build-'));
  try {
    await build({
      entryPoints: {
        cli: path.join(root, 'bin', 'cli.ts'),
        ...Object.fromEntries(Object.entries(WORKERS).map(([name, file]) => [name, path.join(root, file)])),
      },
      outdir: staging,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      sourcemap: 'linked',
      logLevel: 'silent',
    });
    // Whole or not at all: two commands starting at once both build, and the first rename wins.
    fs.renameSync(staging, dir);
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    if (!fs.existsSync(main)) throw err;
  }
  removeOthers(cacheDir, path.basename(dir));
  return main;
}

/** Loads the command from its bundle; false if there is no bundle to load (the caller runs the sources with tsx). */
export async function runBundled(cacheDir = defaultCacheDir()) {
  let main;
  try {
    main = await bundleFor(cacheDir);
  } catch {
    return false;
  }
  // Stack traces (the server's crash log) name the TypeScript files and lines, not the bundle's.
  process.setSourceMapsEnabled(true);
  await import(pathToFileURL(main).href);
  return true;
}

/** Inside the project: the bundle imports its dependencies by name, and node finds them from where it lies. */
function defaultCacheDir() {
  return path.join(ROOT, 'node_modules', '.cache', 'snapferry');
}

/** A digest of every source file's path, size and modification time. */
export function sourceKey(root = ROOT) {
  const lines = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (/\.(ts|mjs|js)$/.test(entry.name)) {
        const st = fs.statSync(file);
        lines.push(`${path.relative(root, file)}\0${st.size}\0${st.mtimeMs}`);
      }
    }
  };
  for (const dir of SOURCES) walk(path.join(root, dir));
  return createHash('sha256').update(lines.sort().join('\n')).digest('hex').slice(0, 16);
}

/**
 * Bundles of older sources go a day after they were made: a command started from one may still start its
 * compression workers from it. Builds that never finished go after a minute.
 */
function removeOthers(cacheDir, keep) {
  for (const name of fs.readdirSync(cacheDir)) {
    if (name === keep) continue;
    const old = path.join(cacheDir, name);
    try {
      const age = Date.now() - fs.statSync(old).mtimeMs;
      if (age > (name.startsWith('.build-') ? 60_000 : 24 * 3600_000)) fs.rmSync(old, { recursive: true, force: true });
    } catch {
      // Another command removed it first.
    }
  }
}
