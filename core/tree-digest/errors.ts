/**
 * The errors of digesting a tree (codes for server/http-errors.ts and client/exit-codes.ts to map):
 * - tree_read_failed: the tree could not be read (permissions, I/O error, getfattr missing); not retryable as is.
 * - tree_changed: an entry changed while it was read (the tree is not a read-only snapshot); retrying reads it again.
 * - tree_digest_file_invalid: a saved digest file is damaged or of another version; recompute it (--read-data).
 */
import { SnapferryError } from '../errors.ts';
import type { SnapferryErrorOptions } from '../errors.ts';

export class TreeReadError extends SnapferryError {
  constructor(message: string, options: SnapferryErrorOptions = {}) {
    super('tree_read_failed', message, options);
  }
}

export class TreeChangedError extends SnapferryError {
  constructor(message: string, options: SnapferryErrorOptions = {}) {
    super('tree_changed', `${message}: digest a read-only snapshot, not a live tree`, { retryable: true, ...options });
  }
}

export class DigestFileError extends SnapferryError {
  constructor(message: string, options: SnapferryErrorOptions = {}) {
    super('tree_digest_file_invalid', `${message}: delete it and digest the tree again`, options);
  }
}
