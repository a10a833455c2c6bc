/**
 * core/tree-digest: the Merkle tree of a snapshot that `verify` compares (issue 18). types.ts is the contract;
 * digestTree builds a DigestedTree from a directory, compareTrees walks two sources down to what differs.
 */
export * from './types.ts';
export { digestTree } from './digest-tree.ts';
export type { DigestOptions, DigestProgress } from './digest-tree.ts';
export { DigestedTree } from './digested-tree.ts';
export { loadTree, saveTree } from './tree-file.ts';
export { compareTrees } from './compare.ts';
export type { CompareOptions } from './compare.ts';
export { spellBytes, unspell } from './spell.ts';
export { DigestFileError, TreeChangedError, TreeReadError } from './errors.ts';
