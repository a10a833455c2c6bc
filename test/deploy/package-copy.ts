/**
 * A copy of this checkout to build packages from (npm pack, the .deb): building in the checkout itself would replace
 * its dist/ under the commands other tests are running from it. Sources, tests (to show they are left out), the
 * package files and README; node_modules is the project's, linked.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildDist } from '../../packaging/build.mjs';

export const ROOT = path.resolve(import.meta.dirname, '../..');

interface AfterHook {
  after(fn: () => Promise<void>): void;
}

export async function tempDir(t: AfterHook, name: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-${name}-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The copy's root, with dist/ built. */
export async function builtCopy(t: AfterHook): Promise<string> {
  const root = path.join(await tempDir(t, 'checkout'), 'snapferry');
  for (const entry of ['bin', 'client', 'core', 'server', 'test', 'deploy', 'nginx', 'packaging', 'package.json', 'package-lock.json', 'README.md', 'LICENSE']) {
    await fs.cp(path.join(ROOT, entry), path.join(root, entry), { recursive: true });
  }
  await fs.symlink(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
  await buildDist(root);
  return root;
}
