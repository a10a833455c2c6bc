/**
 * The contract of `verify` (issue 18): both sides compute the same Merkle tree over a snapshot, and only digests
 * cross the line. core/tree-digest/ computes it; the server answers its side over HTTP, the client walks down to
 * what differs. This file is the shape both build against.
 *
 * A path inside a tree is '' for its top and names joined by '/' below it. A name is the file name's bytes as text:
 * valid printable UTF-8 stays as it is; '%' and every other byte are written %XX (upper-case hex), so that every
 * Linux name (any bytes but '/' and NUL) has exactly one spelling, readable where it can be and reversible always.
 */

export const ENTRY_KINDS = ['dir', 'file', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev'] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

/** A path inside the tree ('' for its top), spelled as the header says. */
export type TreePath = string;

/**
 * What is compared of one entry: all that `btrfs receive` carries. Left out because receive cannot carry them:
 * atime, ctime/otime, inode flags, inode numbers, allocation (holes read as zeros), directory sizes; and the top
 * directory's mtime, which an incremental receive can leave at the time of the receive. Entries on another device
 * than the top (a nested subvolume's placeholder in a snapshot, a mount point) are not in the tree at all: send
 * carries neither (core/tree-digest/walk.ts).
 */
export interface EntryRecord {
  kind: EntryKind;
  /** Permission bits with setuid, setgid and sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Files: size in bytes as a decimal string (sizes pass 2^53); null otherwise. */
  size: string | null;
  /** "SECONDS.NANOSECONDS" (9 digits), exact; null for the top directory. */
  mtime: string | null;
  /** Character and block devices: "MAJOR:MINOR"; null otherwise. */
  rdev: string | null;
  /** Symlinks: the target, spelled as names are; null otherwise. */
  target: string | null;
  /** Hex digest of the xattrs (every namespace; names and values, sorted by name); null when there are none. */
  xattrs: string | null;
  /** Files: hex digest of the content (hashed in pieces); null otherwise. */
  content: string | null;
  /**
   * An inode with more than one name in the tree: the first of its names in walk order (names sorted bytewise,
   * parents before children), the same on both sides whatever the inode numbers; null for an inode with one name.
   */
  link: TreePath | null;
}

/** One entry of a directory as its parent lists it: enough to tell which children differ. */
export interface ChildDigest {
  name: string;
  kind: EntryKind;
  /** Hex digest of the entry: its record, and for a directory its children's names and digests. */
  digest: string;
}

export interface TreeSummary {
  /** Hex digest of the whole tree (its top entry's digest). */
  digest: string;
  /** Entries in the tree, the top included. */
  entries: number;
  /** Bytes of file content, as a decimal string. */
  bytes: string;
}

/** One side of a comparison: a tree whose digests can be asked for, here or over the line. */
export interface TreeDigestSource {
  summary(): Promise<TreeSummary>;
  /** The children of each directory asked for; a path that is not a directory of this tree is absent from the map. */
  children(dirs: readonly TreePath[]): Promise<Map<TreePath, ChildDigest[]>>;
  /** The record of each path asked for; a path not in this tree is absent from the map. */
  records(paths: readonly TreePath[]): Promise<Map<TreePath, EntryRecord>>;
}

/** `missing`: in the local tree (the client's snapshot), not in the remote one (the server's copy); `extra`: the other way. */
export const DIFFERENCE_KINDS = ['missing', 'extra', 'kind', 'content', 'size', 'mode', 'owner', 'mtime', 'xattrs', 'target', 'rdev', 'link'] as const;
export type DifferenceKind = (typeof DIFFERENCE_KINDS)[number];

export interface TreeDifference {
  path: TreePath;
  differs: DifferenceKind[];
  local: EntryRecord | null;
  remote: EntryRecord | null;
}

export interface TreeComparison {
  equal: boolean;
  /** A missing or extra directory is one difference, not one per entry inside it. */
  differences: TreeDifference[];
  /** More differences than were asked for: the list stops at the limit. */
  truncated: boolean;
  /** Calls made to the remote source (each is one round trip over the line). */
  requests: number;
}
