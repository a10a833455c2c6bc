/** The DigestEngine of core/tree-digest: the one file on the server that calls it. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { digestTree, type DigestedTree } from '../../core/tree-digest/index.ts';
import type { DigestEngine } from './engine.ts';

export const treeDigestEngine: DigestEngine<DigestedTree> = {
  digest: (dir, options) =>
    digestTree(dir, {
      reuse: options.previous,
      signal: options.signal,
      onProgress: (p) => options.onProgress({ bytes: Number(p.bytesDone), total: p.walked ? Number(p.bytesTotal) : null, entries: p.entries }),
    }),
  // TODO(merge): core/tree-digest's saved files (tree-file.ts) are not in yet: nothing is saved or loaded until then.
  load: () => Promise.resolve(null),
  save: async (_tree, file) => {
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  },
};
