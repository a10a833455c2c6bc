// Which sources a build was made from, so that a checkout's bin/snapferry.js can tell whether dist/ is the code it
// has now. Only a git checkout has the sources: the packed and installed command never loads this file.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The folders the command's code comes from (test/ is not part of it). */
export const SOURCE_DIRS = ['bin', 'client', 'core', 'server'];
/** What else decides what a build holds: the build itself, and package.json's dependencies (left out of it). */
const BUILD_INPUTS = ['packaging', 'package.json'];
/** Where the build writes the key of the sources it bundled. */
export const KEY_FILE = '.sources';

/** A digest of every source file's path, size and modification time: a few milliseconds for ~200 files. */
export function sourceKey(root) {
  const lines = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (/\.(ts|mjs|js)$/.test(entry.name)) add(file, fs.statSync(file));
    }
  };
  const add = (file, st) => lines.push(`${path.relative(root, file)}\0${st.size}\0${st.mtimeMs}`);
  for (const name of [...SOURCE_DIRS, ...BUILD_INPUTS]) {
    const file = path.join(root, name);
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (st?.isDirectory()) walk(file);
    else if (st) add(file, st);
  }
  return createHash('sha256').update(lines.sort().join('\n')).digest('hex').slice(0, 16);
}

/** Whether `dist` holds a build of the sources under `root` as they are now. */
export function distIsCurrent(root, dist) {
  try {
    return fs.readFileSync(path.join(dist, KEY_FILE), 'utf8').trim() === sourceKey(root);
  } catch {
    return false;
  }
}
