#!/usr/bin/env node
// The installed command: dist/cli.mjs, the bundle `npm run build` makes (packaging/build.mjs), run by plain node.
// Nothing is written at run time, so a read-only install (the server unit's ProtectSystem=strict) starts as fast.
//
// In a git checkout (bin/cli.ts is here) dist/ may be missing or older than the sources: then the sources run
// through tsx (a dev dependency), slower to start (~1 s) but never stale. `npm test`, `npm run test:one` and
// `npm run bench` build first when dist/ is stale, so the commands the tests start run from dist/.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';

// V8's young generation starts at 1 MiB a semi-space and doubles up to 16 MiB whenever much of it survives a
// scavenge, which loading the code does: 32 MiB of heap that neither side needs, since their data are buffers
// outside the heap, and that each worker thread took again (docs/performance.md, issue 22). Kept at its start here,
// before anything is loaded; `--max-semi-space-size` cannot be changed once the heap exists, but the growth factor is
// read at each growth. Process-wide: the workers' heaps get it too. Measured CPU per GB unchanged within the noise.
v8.setFlagsFromString('--semi-space-growth-factor=1');

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');

async function fromSources() {
  const { distIsCurrent } = await import('./source-key.js');
  return !distIsCurrent(ROOT, DIST);
}

if (existsSync(path.join(ROOT, 'bin', 'cli.ts')) && (await fromSources())) {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./cli.ts');
} else {
  // Stack traces (the server's crash log) name the TypeScript files and lines, not the bundle's.
  process.setSourceMapsEnabled(true);
  await import(pathToFileURL(path.join(DIST, 'cli.mjs')).href);
}
