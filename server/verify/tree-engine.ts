/** The DigestEngine of core/tree-digest: the one file on the server that calls it. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { digestTree, loadTree, saveTree, type DigestedTree } from '../../core/tree-digest/index.ts';
import type { Logger } from '../log.ts';
import type { DigestEngine } from './engine.ts';

export function treeDigestEngine(log: Logger): DigestEngine<DigestedTree> {
  return {
    digest: (dir, options) =>
      digestTree(dir, {
        reuse: options.previous,
        signal: options.signal,
        onProgress: (p) => options.onProgress({ bytes: Number(p.bytesDone), total: p.walked ? Number(p.bytesTotal) : null, entries: p.entries }),
      }),
    load: async (file) => {
      // None saved yet is the common case, and no warning.
      if (!(await fs.stat(file).then(() => true, () => false))) return null;
      try {
        return await loadTree(file);
      } catch (err) {
        // A damaged or older file only costs a full read: the digest is computed from the disk instead.
        log.warn({ file, err: (err as Error).message }, 'a saved digest could not be used; computing it from the disk');
        return null;
      }
    },
    save: async (tree, file) => {
      await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await saveTree(tree, file);
    },
  };
}
