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
