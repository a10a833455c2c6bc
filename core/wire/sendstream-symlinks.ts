/**
 * Keeps a send stream from reaching through a symlink. `btrfs receive --chroot` confines the stream to the folder it
 * receives into, not to the new subvolume: with `up -> /` (or `up -> ../..`) in the subvolume, `up/x` is the
 * folder's own x, and every path of the stream is still relative and free of `..` (sendstream-paths.ts). So a
 * stream could write, truncate, chmod, rename or delete what the folder held before it (the user's files beside a
 * restore, the other snapshots beside a receive on the server).
 *
 * btrfs send never names a path through a symlink: it builds every path from the inode's parent references
 * (fs/btrfs/send.c get_cur_path: each component is a directory's name, or an orphan name `o<ino>-<gen>-<idx>`), and a
 * symlink has no children. Nor does it send a command that follows a symlink at the end of a path: it skips data,
 * truncate and chmod for symlinks (send.c process_extent, finish_inode_if_needed: `!S_ISLNK`), and what it does send
 * for one (RENAME, LINK, UNLINK, CHOWN, UTIMES, xattrs) btrfs receive applies without following it (rename, link,
 * unlink, lchown, utimensat AT_SYMLINK_NOFOLLOW, lsetxattr: btrfs-progs cmds/receive.c). So a stream that does
 * either is not one btrfs send made, and is refused.
 *
 * To tell, this keeps a tree of where the symlinks are as the stream goes: the ones it makes, moves, links and
 * deletes, and for an incremental stream the parent snapshot's own, looked up on demand (`ParentEntryLookup`, by
 * the path the entry had in the parent, followed through the stream's renames) and remembered. Only the directories
 * on the way to a symlink the stream touched are held, not the whole tree.
 */
import { findSendAttribute } from './sendstream-attributes.ts';
import { SendAttr, SendCmd } from './sendstream-format.ts';
import type { SendCommand } from './sendstream-command.ts';

/** What the parent snapshot holds at a path relative to its root, seen with lstat (never following a symlink). */
export type ParentEntryKind = 'symlink' | 'directory' | 'other' | 'missing';
export type ParentEntryLookup = (path: string) => ParentEntryKind;

/** Why a command's path reaches through a symlink, with the attribute that names it. */
export interface SymlinkFault {
  attribute: number;
  reason: string;
}

interface Node {
  symlink: boolean;
  /** For a directory the parent snapshot had: its path there, where children not yet seen are looked up. */
  origin: string | null;
  children: Map<string, Node>;
}

function plain(): Node {
  return { symlink: false, origin: null, children: new Map() };
}

/** Commands whose PATH btrfs receive opens or changes through a symlink at its end (open, truncate, chmod). */
const FOLLOWS_LAST = new Set<number>([
  SendCmd.WRITE, SendCmd.CLONE, SendCmd.TRUNCATE, SendCmd.CHMOD, SendCmd.UPDATE_EXTENT,
  SendCmd.FALLOCATE, SendCmd.FILEATTR, SendCmd.ENCODED_WRITE, SendCmd.ENABLE_VERITY,
]);

/** Components as btrfs receive's kernel calls read them: empty ones and "." change nothing ("..": sendstream-paths.ts). */
function components(path: Buffer): string[] {
  return path.toString('latin1').split('/').filter((c) => c !== '' && c !== '.');
}

export class SendStreamSymlinks {
  readonly #lookup: ParentEntryLookup | undefined;
  #root: Node = plain();
  /** The parent snapshot as it is, for CLONE from it (never changed by the stream). */
  readonly #parent: Node;
  #parentUuid: string | undefined;

  /** Without `lookup` the parent's own symlinks are unknown: only the ones the stream makes are kept track of. */
  constructor(lookup?: ParentEntryLookup) {
    this.#lookup = lookup;
    this.#parent = { symlink: false, origin: lookup ? '' : null, children: new Map() };
  }

  /** The first command: a full stream starts from an empty subvolume, an incremental one from its parent. */
  start(parentUuid: string | null): void {
    this.#parentUuid = parentUuid ?? undefined;
    if (parentUuid !== null && this.#lookup) this.#root = { symlink: false, origin: '', children: new Map() };
  }

  /** Checks one command (after its paths passed sendstream-paths.ts) and applies it to the tree; returns the fault. */
  visit(command: SendCommand, cloneUuid?: string): SymlinkFault | undefined {
    const attrs = command.attributes;
    const at = (type: number) => findSendAttribute(attrs, type);
    const path = at(SendAttr.PATH);
    if (path === undefined) return undefined;
    const follows = FOLLOWS_LAST.has(command.cmd);
    const fault = this.#through(this.#root, components(path), follows, SendAttr.PATH);
    if (fault) return fault;
    if (command.cmd === SendCmd.CLONE) {
      const from = at(SendAttr.CLONE_PATH);
      // From the parent: its path there, as the parent is; from anything else (the stream's own), as the stream left it.
      const tree = cloneUuid !== undefined && cloneUuid === this.#parentUuid ? this.#parent : this.#root;
      return from === undefined ? undefined : this.#through(tree, components(from), true, SendAttr.CLONE_PATH);
    }
    if (command.cmd === SendCmd.RENAME) {
      const to = at(SendAttr.PATH_TO);
      if (to === undefined) return undefined;
      const toParts = components(to);
      const toFault = this.#through(this.#root, toParts, false, SendAttr.PATH_TO);
      if (toFault) return toFault;
      this.#put(toParts, this.#take(components(path)));
    } else if (command.cmd === SendCmd.LINK) {
      const existing = at(SendAttr.PATH_LINK);
      if (existing === undefined) return undefined;
      const existingParts = components(existing);
      const linkFault = this.#through(this.#root, existingParts, false, SendAttr.PATH_LINK);
      if (linkFault) return linkFault;
      this.#create(components(path), this.#find(this.#root, existingParts)?.symlink === true);
    } else if (command.cmd === SendCmd.SYMLINK) {
      this.#create(components(path), true);
    } else if (command.cmd === SendCmd.UNLINK || command.cmd === SendCmd.RMDIR) {
      this.#take(components(path));
    }
    return undefined;
  }

  /** How many entries the tree holds: what this costs in memory, which must not grow with every file a stream moves. */
  get tracked(): number {
    const count = (node: Node): number => [...node.children.values()].reduce((n, c) => n + 1 + count(c), 0);
    return count(this.#root);
  }

  /** The fault when a component before the last (or the last, for a command that follows it) is a symlink. */
  #through(root: Node, parts: string[], followsLast: boolean, attribute: number): SymlinkFault | undefined {
    let node: Node | undefined = root;
    for (let i = 0; i < parts.length && node; i++) {
      node = this.#child(node, parts[i]!);
      const last = i === parts.length - 1;
      if (node?.symlink && (!last || followsLast)) {
        const where = parts.slice(0, i + 1).join('/');
        return {
          attribute,
          reason: last ? `"${where}" is a symlink, and btrfs receive would follow it` : `its component "${where}" is a symlink, and btrfs receive would follow it`,
        };
      }
    }
    return undefined;
  }

  /** The node at `name` in `node`, looked up in the parent snapshot the first time; undefined: nothing with symlinks. */
  #child(node: Node, name: string): Node | undefined {
    const known = node.children.get(name);
    if (known || node.origin === null || !this.#lookup) return known;
    const origin = node.origin === '' ? name : `${node.origin}/${name}`;
    const kind = this.#lookup(origin);
    if (kind !== 'symlink' && kind !== 'directory') return undefined;
    const child: Node = { symlink: kind === 'symlink', origin: kind === 'directory' ? origin : null, children: new Map() };
    node.children.set(name, child);
    return child;
  }

  #find(root: Node, parts: string[]): Node | undefined {
    let node: Node | undefined = root;
    for (const part of parts) node = node && this.#child(node, part);
    return node;
  }

  /** The folder node that holds `parts`' last component, made on the way where nothing was known. */
  #folder(parts: string[]): Node {
    let node = this.#root;
    for (const part of parts.slice(0, -1)) {
      let next = this.#child(node, part);
      if (!next) node.children.set(part, (next = plain()));
      node = next;
    }
    return node;
  }

  /** Removes the entry at `parts` (what it was, with what lies under it); nothing of the parent shows there after. */
  #take(parts: string[]): Node | undefined {
    const name = parts.at(-1);
    if (name === undefined) return undefined;
    const folder = this.#folder(parts);
    const node = this.#child(folder, name);
    this.#place(folder, name, undefined);
    return node;
  }

  #put(parts: string[], node: Node | undefined): void {
    const name = parts.at(-1);
    if (name !== undefined) this.#place(this.#folder(parts), name, node);
  }

  /**
   * Sets what is at `name` in `folder` (undefined: nothing that matters). Where the parent snapshot could still be
   * looked up, a plain node must stand there to hide what the parent had; elsewhere nothing is kept, so that a
   * stream's every rename and unlink (a full stream renames each file it made under an orphan name) costs no memory.
   */
  #place(folder: Node, name: string, node: Node | undefined): void {
    if (node === undefined && folder.origin === null) folder.children.delete(name);
    else folder.children.set(name, node ?? plain());
  }

  /**
   * A new entry made by SYMLINK or LINK; creating over a symlink fails in btrfs receive (EEXIST), so a symlink there
   * stays one. MKFILE, MKDIR and the other makers need nothing: what they make is not a symlink, and where something
   * is already known they fail the same way.
   */
  #create(parts: string[], symlink: boolean): void {
    const name = parts.at(-1);
    if (name === undefined) return;
    const folder = this.#folder(parts);
    if (this.#child(folder, name)?.symlink === true) return;
    folder.children.set(name, { symlink, origin: null, children: new Map() });
  }
}
