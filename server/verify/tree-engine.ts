/** The DigestEngine of core/tree-digest (the one file that calls it on the server). */
import { SnapferryError } from '../../core/errors.ts';
import type { DigestEngine } from './engine.ts';

export const treeDigestEngine: DigestEngine = {
  digest: () => Promise.reject(new SnapferryError('not_implemented', 'core/tree-digest is not merged yet')),
  load: () => Promise.resolve(null),
  save: () => Promise.resolve(),
};
