// The files of node_modules the packaged command runs: what loading each runtime dependency loads, as node resolves
// it on this machine (the native addon built here, the platform's @node-rs/crc32 binding), with each of those
// packages' package.json and license files. Not their install-time tree: zstd-napi's node-gyp build (object files,
// Makefiles, config.gypi naming the paths it was built in, the zstd sources), @types/node, node-addon-api,
// prebuild-install and what it needs, which node never loads.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const LICENSE = /^(licen[cs]e|copying|notice)(\.|-|$)/i;
/** The build tree of a node-gyp addon: only its .node binaries are loaded, and those are found by loading. */
const BUILD_TREE = /^build(\/|$)/;

/** Every file a require() of each of package.json's dependencies loads, as absolute (real) paths. */
function loadedFiles(root, dependencies) {
  const script = [
    "const { createRequire } = require('node:module');",
    `const load = createRequire(${JSON.stringify(path.join(root, 'package.json'))});`,
    `for (const name of ${JSON.stringify(dependencies)}) load(name);`,
    'process.stdout.write(JSON.stringify(Object.keys(load.cache)));',
  ].join('\n');
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' }));
}

/** The package folder (real path) a loaded file belongs to: the nearest folder above it with a package.json. */
function packageOf(file, modules) {
  for (let dir = path.dirname(file); dir.startsWith(modules + path.sep); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
  }
  throw new Error(`${file} is in no package under ${modules}`);
}

/** Files to ship, as paths relative to the checkout's node_modules, e.g. zstd-napi/build/Release/binding.node. */
export function runtimeFiles(root) {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const dependencies = Object.keys(pkg.dependencies ?? {});
  const modules = fs.realpathSync(path.join(root, 'node_modules'));
  const files = new Set();
  for (const file of loadedFiles(root, dependencies)) {
    if (!file.startsWith(modules + path.sep)) throw new Error(`${file}, loaded by a dependency, is outside ${modules}`);
    const dir = packageOf(file, modules);
    files.add(path.relative(modules, file));
    files.add(path.relative(modules, path.join(dir, 'package.json')));
    for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
      const rel = path.relative(dir, path.join(entry.parentPath, entry.name));
      if (entry.isFile() && LICENSE.test(entry.name) && !BUILD_TREE.test(rel) && !rel.split(path.sep).includes('node_modules')) {
        files.add(path.relative(modules, path.join(dir, rel)));
      }
    }
  }
  for (const name of dependencies) {
    if (![...files].some((f) => f.startsWith(`${name}/`))) throw new Error(`loading ${name} loaded no file of it (an ES module?)`);
  }
  return [...files].sort();
}
