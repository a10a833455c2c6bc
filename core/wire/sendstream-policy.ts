/**
 * What a receiving side allows a btrfs send stream to do, checked command by command before `btrfs receive` sees it.
 *
 * btrfs receive trusts its input: it joins the stream's paths to the target directory as they come (`..` included),
 * finds clone and parent sources by UUID across the whole filesystem (btrfs-progs cmds/receive.c process_clone,
 * process_snapshot: subvol_uuid_search by received UUID, then by UUID), and opens clone sources through a descriptor
 * taken before `--chroot`, so the chroot does not confine them. The framing checks (magic, version, CRC, lengths,
 * one subvolume, END) live in SendStreamParser; this file adds the rules that need the receiver's knowledge, given as
 * plain data (which parent, which clone sources, whether device nodes and setuid files may be created): core knows
 * nothing of the server.
 */
import { SnapferryError } from '../errors.ts';
import { findSendAttribute, sendAttributeBigU64, sendAttributeUuid } from './sendstream-attributes.ts';
import { encodedWriteFault } from './sendstream-encoded-write.ts';
import { SendAttr, SendCmd, sendAttributeName } from './sendstream-format.ts';
import type { SendCommand } from './sendstream-command.ts';
import { unsafeNameReason, unsafePathReason } from './sendstream-paths.ts';
import { SendStreamSymlinks, type ParentEntryLookup } from './sendstream-symlinks.ts';

export { unsafeNameReason, unsafePathReason } from './sendstream-paths.ts';

export interface SendStreamPolicy {
  /** The UUID the stream's SNAPSHOT command must name as its parent (CLONE_UUID); null: a full send (SUBVOL). */
  parentUuid: string | null;
  /**
   * UUIDs that CLONE commands may name as their source, besides the stream's own subvolume (a file cloned from
   * another file of the same snapshot). Compared lowercase, as formatSendUuid prints them.
   */
  cloneSources: readonly string[];
  /** Whether MKNOD may create character or block devices. FIFOs and sockets carry no privilege and always may. */
  allowDevices: boolean;
  /** Whether setuid/setgid mode bits and file capabilities (the security.capability xattr) may be set. */
  allowSetuid: boolean;
  /**
   * For an incremental stream: what the parent snapshot holds at a path (lstat), so that a path through one of its
   * symlinks is refused too (sendstream-symlinks.ts). Without it only the symlinks the stream makes are known.
   */
  parentEntries?: ParentEntryLookup;
}

export type SendStreamPolicyCode =
  | 'sendstream_unsafe_name'
  | 'sendstream_unsafe_path'
  | 'sendstream_wrong_parent'
  | 'sendstream_foreign_clone'
  | 'sendstream_device_refused'
  | 'sendstream_setuid_refused'
  | 'sendstream_bad_encoded_write';

/** A stream that is well formed but does what the receiver does not allow. Sending it again cannot help. */
export class SendStreamPolicyError extends SnapferryError {
  declare readonly code: SendStreamPolicyCode;

  constructor(code: SendStreamPolicyCode, message: string, details: Record<string, unknown>) {
    super(code, message, { retryable: false, details });
  }
}

/** Attributes that btrfs receive joins to the subvolume's path: each must stay inside it. */
const PATH_ATTRIBUTES = [SendAttr.PATH, SendAttr.PATH_TO, SendAttr.CLONE_PATH] as const;
const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const SETID_BITS = 0o6000;
const CAPABILITY_XATTR = Buffer.from('security.capability', 'latin1');

function shown(value: Uint8Array): string {
  const text = Buffer.from(value).toString('utf8');
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

/**
 * Checks each command against a policy. Feed it every command in order (SendStreamParser's onCommand); it throws a
 * SendStreamPolicyError at the first one that breaks a rule.
 */
export class SendStreamPolicyCheck {
  readonly #policy: SendStreamPolicy;
  readonly #cloneSources: ReadonlySet<string>;
  /** The stream's own UUID, from its first command: a clone source the policy need not list. */
  #ownUuid: string | undefined;
  readonly #symlinks: SendStreamSymlinks;

  constructor(policy: SendStreamPolicy) {
    this.#policy = policy;
    this.#symlinks = new SendStreamSymlinks(policy.parentEntries);
    this.#cloneSources = new Set(policy.cloneSources.map((u) => u.toLowerCase()));
  }

  /** The parser has already checked framing, CRC and that command 0 is the only SUBVOL/SNAPSHOT. */
  visit(command: SendCommand): void {
    const place = { offset: command.offset, commandIndex: command.index, commandName: command.name };
    const attrs = command.attributes;
    if (command.cmd === SendCmd.SUBVOL || command.cmd === SendCmd.SNAPSHOT) {
      this.#checkSubvolume(command, place);
      return;
    }
    for (const type of PATH_ATTRIBUTES) this.#checkPath(findSendAttribute(attrs, type), type, place);
    // LINK's PATH_LINK names an existing file to hard-link; SYMLINK's is only the link's text, which may be anything.
    if (command.cmd === SendCmd.LINK) this.#checkPath(findSendAttribute(attrs, SendAttr.PATH_LINK), SendAttr.PATH_LINK, place);
    this.#checkSymlinks(command, place);
    if (command.cmd === SendCmd.CLONE) this.#checkClone(command, place);
    if (command.cmd === SendCmd.MKNOD) this.#checkMknod(command, place);
    if (command.cmd === SendCmd.CHMOD) this.#checkChmod(command, place);
    if (command.cmd === SendCmd.SET_XATTR || command.cmd === SendCmd.REMOVE_XATTR) this.#checkXattr(command, place);
    if (command.cmd === SendCmd.ENCODED_WRITE) this.#checkEncodedWrite(command, place);
  }

  #checkSubvolume(command: SendCommand, place: Record<string, unknown>): void {
    const name = findSendAttribute(command.attributes, SendAttr.PATH) ?? Buffer.alloc(0);
    const reason = unsafeNameReason(name);
    if (reason !== undefined) {
      throw new SendStreamPolicyError(
        'sendstream_unsafe_name',
        `the btrfs send stream names its subvolume ${shown(name)}, which is not one plain name: ${reason}`,
        place,
      );
    }
    this.#ownUuid = sendAttributeUuid(command.attributes, SendAttr.UUID);
    const parent = command.cmd === SendCmd.SNAPSHOT ? (sendAttributeUuid(command.attributes, SendAttr.CLONE_UUID) ?? null) : null;
    const expected = this.#policy.parentUuid?.toLowerCase() ?? null;
    if (parent !== expected) {
      throw new SendStreamPolicyError(
        'sendstream_wrong_parent',
        `the btrfs send stream is based on ${parent ?? 'nothing (a full send)'}, but the receiver chose ${expected ?? 'a full send'}: push again so the client sends from the parent the server holds`,
        { ...place, parentUuid: parent, expectedParentUuid: expected },
      );
    }
    this.#symlinks.start(parent);
  }

  #checkPath(value: Buffer | undefined, type: number, place: Record<string, unknown>): void {
    if (value === undefined) return;
    const reason = unsafePathReason(value);
    if (reason === undefined) return;
    throw new SendStreamPolicyError(
      'sendstream_unsafe_path',
      `command #${String(place.commandIndex)} (${String(place.commandName)}) of the btrfs send stream has ${sendAttributeName(type)} ${shown(value)}, which could leave the snapshot: ${reason}`,
      { ...place, attribute: sendAttributeName(type) },
    );
  }

  /** No path may reach through a symlink: btrfs send never makes one that does (sendstream-symlinks.ts). */
  #checkSymlinks(command: SendCommand, place: Record<string, unknown>): void {
    const cloneUuid = command.cmd === SendCmd.CLONE ? sendAttributeUuid(command.attributes, SendAttr.CLONE_UUID) : undefined;
    const fault = this.#symlinks.visit(command, cloneUuid);
    if (fault === undefined) return;
    const value = findSendAttribute(command.attributes, fault.attribute) ?? Buffer.alloc(0);
    throw new SendStreamPolicyError(
      'sendstream_unsafe_path',
      `command #${String(place.commandIndex)} (${String(place.commandName)}) of the btrfs send stream has ${sendAttributeName(fault.attribute)} ${shown(value)}, which could leave the snapshot: ${fault.reason} (btrfs send never sends such a path)`,
      { ...place, attribute: sendAttributeName(fault.attribute) },
    );
  }

  #checkClone(command: SendCommand, place: Record<string, unknown>): void {
    const source = sendAttributeUuid(command.attributes, SendAttr.CLONE_UUID);
    if (source !== undefined && (source === this.#ownUuid || this.#cloneSources.has(source))) return;
    throw new SendStreamPolicyError(
      'sendstream_foreign_clone',
      `command #${String(place.commandIndex)} (CLONE) of the btrfs send stream copies data from subvolume ${source ?? '(no UUID)'}, which is neither this snapshot nor one of this volume's snapshots on the server`,
      { ...place, cloneUuid: source ?? null },
    );
  }

  /** MKNOD makes a node of the type receive gives mknod(2) (see appliedMode): only devices carry privilege. */
  #checkMknod(command: SendCommand, place: Record<string, unknown>): void {
    const mode = sendAttributeBigU64(command.attributes, SendAttr.MODE);
    if (mode === undefined || this.#policy.allowDevices) return;
    const type = appliedMode(mode) & S_IFMT;
    if (type !== S_IFCHR && type !== S_IFBLK) return;
    const path = shown(findSendAttribute(command.attributes, SendAttr.PATH) ?? Buffer.alloc(0));
    throw new SendStreamPolicyError(
      'sendstream_device_refused',
      `the btrfs send stream creates the ${type === S_IFCHR ? 'character' : 'block'} device node ${path}, and this server refuses device nodes: mount its volumes nodev and allow them, or leave devices out of the snapshot`,
      { ...place, mode: appliedMode(mode), modeAttribute: mode.toString() },
    );
  }

  /** CHMOD sets the permission bits receive gives chmod(2) (see appliedMode); setuid and setgid are privilege. */
  #checkChmod(command: SendCommand, place: Record<string, unknown>): void {
    const mode = sendAttributeBigU64(command.attributes, SendAttr.MODE);
    if (mode === undefined || this.#policy.allowSetuid) return;
    const applied = appliedMode(mode);
    if ((applied & SETID_BITS) === 0) return;
    const path = shown(findSendAttribute(command.attributes, SendAttr.PATH) ?? Buffer.alloc(0));
    const sent = BigInt(applied) === mode ? '' : `: its MODE is ${mode.toString(8)}, of which btrfs receive applies the low 32 bits`;
    throw new SendStreamPolicyError(
      'sendstream_setuid_refused',
      `the btrfs send stream makes ${path} setuid/setgid (mode ${applied.toString(8)}${sent}), and this server refuses such files: mount its volumes nosuid and allow them`,
      { ...place, mode: applied, modeAttribute: mode.toString() },
    );
  }

  /** An ENCODED_WRITE's PATH follows the rules of every path (above); its sizes, those of sendstream-encoded-write.ts. */
  #checkEncodedWrite(command: SendCommand, place: Record<string, unknown>): void {
    const fault = encodedWriteFault(command.attributes);
    if (fault === undefined) return;
    const path = shown(findSendAttribute(command.attributes, SendAttr.PATH) ?? Buffer.alloc(0));
    throw new SendStreamPolicyError(
      'sendstream_bad_encoded_write',
      `command #${String(place.commandIndex)} (ENCODED_WRITE) of the btrfs send stream writes ${path} in a way btrfs send never does: ${fault.reason}`,
      { ...place, ...fault.details },
    );
  }

  /**
   * btrfs receive hands XATTR_NAME to lsetxattr/lremovexattr as a C string, cut at its first NUL: SET_XATTR
   * `security.capability\0x` sets security.capability. btrfs send never writes a NUL in a name (the kernel's xattr
   * names cannot hold one), so such a name is refused whatever the policy, rather than judged as cut: the name
   * checked and shown is then always the one btrfs receive applies (paths follow the same rule, unsafePathReason).
   */
  #checkXattr(command: SendCommand, place: Record<string, unknown>): void {
    const name = findSendAttribute(command.attributes, SendAttr.XATTR_NAME);
    if (name === undefined) return;
    const path = shown(findSendAttribute(command.attributes, SendAttr.PATH) ?? Buffer.alloc(0));
    if (name.includes(0)) {
      throw new SendStreamPolicyError(
        'sendstream_unsafe_name',
        `command #${String(place.commandIndex)} (${String(place.commandName)}) of the btrfs send stream names an extended attribute of ${path} ${shown(name)}, which holds a NUL byte: btrfs receive would cut the name there and act on another attribute than the one named`,
        { ...place, attribute: sendAttributeName(SendAttr.XATTR_NAME) },
      );
    }
    if (command.cmd !== SendCmd.SET_XATTR || this.#policy.allowSetuid || !name.equals(CAPABILITY_XATTR)) return;
    throw new SendStreamPolicyError(
      'sendstream_setuid_refused',
      `the btrfs send stream gives ${path} file capabilities (security.capability), and this server refuses them: mount its volumes nosuid and allow them`,
      place,
    );
  }
}

/**
 * The mode btrfs receive applies for a MODE attribute (btrfs-progs cmds/receive.c, the same from v3.12 through v6.2
 * and today): it reads a u64 and passes it on unchecked, to `chmod(path, mode)` for CHMOD and to
 * `mknod(path, mode & S_IFMT, rdev)` for MKNOD. mode_t is 32 bits, so the higher bits are dropped: MODE
 * (1<<60)|04755 makes a setuid file, and (1<<60)|S_IFCHR a character device. (The kernel then keeps 07777 of a chmod
 * and S_IFMT of a mknod; both lie inside these 32 bits.) MKNOD's permission bits never apply: they come from a CHMOD.
 */
function appliedMode(mode: bigint): number {
  return Number(BigInt.asUintN(32, mode));
}

