/**
 * The entries of one tree in walk order (preorder, names sorted bytewise), column by column: typed arrays and two
 * digest arenas instead of an object per entry, so that a tree of millions of entries fits in memory (about 150
 * bytes an entry plus its name). Index 0 is the top; a parent's index is always below its children's, so walking the
 * indices backwards meets every child before its parent.
 */
import { ENTRY_KINDS } from './types.ts';
import type { EntryKind } from './types.ts';

export const NO_ENTRY = -1;

/** What the walk knows of an entry (content and digests come later). */
export interface EntryFacts {
  parent: number;
  name: string;
  kind: EntryKind;
  mode: number;
  uid: number;
  gid: number;
  /** Files only; 0n otherwise. */
  size: bigint;
  mtimeNs: bigint;
  /** For reuse in a later digest of a snapshot of the same subvolume: inode number and ctime. */
  ino: bigint;
  ctimeNs: bigint;
  rdev: string | null;
  target: string | null;
}

export class EntryTable {
  count = 0;
  #capacity = 0;
  parent = new Int32Array(0);
  firstChild = new Int32Array(0);
  nextSibling = new Int32Array(0);
  #lastChild = new Int32Array(0);
  kind = new Uint8Array(0);
  mode = new Uint16Array(0);
  uid = new Uint32Array(0);
  gid = new Uint32Array(0);
  size = new BigUint64Array(0);
  mtimeNs = new BigInt64Array(0);
  ctimeNs = new BigInt64Array(0);
  ino = new BigUint64Array(0);
  /** 1 when the content digest of a file is in `content`. */
  hasContent = new Uint8Array(0);
  content = Buffer.alloc(0);
  digest = Buffer.alloc(0);
  readonly names: string[] = [];
  readonly rdev = new Map<number, string>();
  readonly target = new Map<number, string>();
  /** Hex xattrs digest of the entries that have xattrs. */
  readonly xattrs = new Map<number, string>();
  /** Entry -> the first entry (walk order) of its inode, for inodes with more than one name in the tree. */
  readonly link = new Map<number, number>();

  add(facts: EntryFacts): number {
    if (this.count === this.#capacity) this.#grow();
    const i = this.count++;
    this.parent[i] = facts.parent;
    this.firstChild[i] = NO_ENTRY;
    this.nextSibling[i] = NO_ENTRY;
    this.#lastChild[i] = NO_ENTRY;
    if (facts.parent !== NO_ENTRY) {
      const last = this.#lastChild[facts.parent] as number;
      if (last === NO_ENTRY) this.firstChild[facts.parent] = i;
      else this.nextSibling[last] = i;
      this.#lastChild[facts.parent] = i;
    }
    this.kind[i] = ENTRY_KINDS.indexOf(facts.kind);
    this.mode[i] = facts.mode & 0o7777;
    this.uid[i] = facts.uid;
    this.gid[i] = facts.gid;
    this.size[i] = facts.size;
    this.mtimeNs[i] = facts.mtimeNs;
    this.ctimeNs[i] = facts.ctimeNs;
    this.ino[i] = facts.ino;
    this.hasContent[i] = 0;
    this.names.push(facts.name);
    if (facts.rdev !== null) this.rdev.set(i, facts.rdev);
    if (facts.target !== null) this.target.set(i, facts.target);
    return i;
  }

  kindOf(i: number): EntryKind {
    return ENTRY_KINDS[this.kind[i] as number] as EntryKind;
  }

  setContent(i: number, hex: string): void {
    this.content.write(hex, i * 32, 32, 'hex');
    this.hasContent[i] = 1;
  }

  contentOf(i: number): string | null {
    return this.hasContent[i] === 1 ? this.content.toString('hex', i * 32, i * 32 + 32) : null;
  }

  digestOf(i: number): string {
    return this.digest.toString('hex', i * 32, i * 32 + 32);
  }

  setDigest(i: number, hex: string): void {
    this.digest.write(hex, i * 32, 32, 'hex');
  }

  *childrenOf(i: number): Generator<number> {
    for (let c = this.firstChild[i] as number; c !== NO_ENTRY; c = this.nextSibling[c] as number) yield c;
  }

  /** The path of entry i as types.ts spells it ('' for the top). */
  pathOf(i: number): string {
    const parts: string[] = [];
    for (let e = i; e > 0; e = this.parent[e] as number) parts.push(this.names[e] as string);
    return parts.reverse().join('/');
  }

  #grow(): void {
    const capacity = Math.max(1024, this.#capacity * 2);
    const grow = <T extends Int32Array | Uint8Array | Uint16Array | Uint32Array | BigUint64Array | BigInt64Array>(
      old: T,
      make: (n: number) => T,
    ): T => {
      const next = make(capacity);
      next.set(old as never);
      return next;
    };
    this.parent = grow(this.parent, (n) => new Int32Array(n));
    this.firstChild = grow(this.firstChild, (n) => new Int32Array(n));
    this.nextSibling = grow(this.nextSibling, (n) => new Int32Array(n));
    this.#lastChild = grow(this.#lastChild, (n) => new Int32Array(n));
    this.kind = grow(this.kind, (n) => new Uint8Array(n));
    this.mode = grow(this.mode, (n) => new Uint16Array(n));
    this.uid = grow(this.uid, (n) => new Uint32Array(n));
    this.gid = grow(this.gid, (n) => new Uint32Array(n));
    this.size = grow(this.size, (n) => new BigUint64Array(n));
    this.mtimeNs = grow(this.mtimeNs, (n) => new BigInt64Array(n));
    this.ctimeNs = grow(this.ctimeNs, (n) => new BigInt64Array(n));
    this.ino = grow(this.ino, (n) => new BigUint64Array(n));
    this.hasContent = grow(this.hasContent, (n) => new Uint8Array(n));
    const content = Buffer.alloc(capacity * 32);
    this.content.copy(content);
    this.content = content;
    const digest = Buffer.alloc(capacity * 32);
    this.digest.copy(digest);
    this.digest = digest;
    this.#capacity = capacity;
  }
}
