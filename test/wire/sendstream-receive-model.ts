/**
 * A model of what `btrfs receive` does with a send stream, written from btrfs-progs' own code and kept apart from
 * core/wire on purpose (its own TLV walk, its own CRC32C): the property tests and the fuzzer hold the policy
 * (core/wire/sendstream-policy.ts) against it, so a reading both got wrong the same way would go unnoticed.
 *
 * Read from btrfs-progs (v6.2, which runs here, and master; unchanged since v3.12 where it matters):
 * - common/send-stream.c read_cmd: a command is `u32 len, u16 cmd, u32 crc` and `len` bytes of TLVs; the CRC is the
 *   kernel's crc32c(0, ...) over header (crc zeroed) and body; TLV types 1..35; DATA in version >= 2 runs to the end
 *   of the command; an attribute given twice keeps the LAST value (cmd_attrs[tlv_type] is overwritten).
 * - read_and_process_cmd: integers via TLV_GET_U64/U32 must be exactly 8/4 bytes, or the command fails; strings
 *   (tlv_get_string) are copied and NUL-terminated, then used as C strings, so they end at their first NUL; an
 *   unknown command number does nothing (no `default:` case); END ends the stream.
 * - btrfs_read_and_process_send_stream: a failed command counts as an error, and with max_errors 1 (the default,
 *   and what snapferry runs) the stream stops there: later commands are never applied.
 * - cmds/receive.c: process_chmod calls chmod(path, mode) and process_mknod mknod(path, mode & S_IFMT, rdev), each
 *   with the u64 mode passed as a 32-bit mode_t; process_set_xattr calls lsetxattr(path, name, ...) with the C string.
 * - the kernel: chmod keeps `mode & 07777` (S_IALLUGO); mknod makes a character/block device for S_IFCHR/S_IFBLK,
 *   a regular file for 0 or S_IFREG, a FIFO or socket, and refuses S_IFDIR (EPERM) or any other type (EINVAL).
 *
 * "Privileged" here is what `privilegedFiles: refuse` exists to keep out: a setuid or setgid mode, a character or
 * block device (whatever its rdev: glibc refuses an rdev above 32 bits, but a model that leans on a libc detail
 * would be a weaker oracle), and the security.capability xattr.
 */
import { kernelCrc32c } from './sendstream-builder.ts';

const MAGIC = Buffer.from('btrfs-stream\0', 'latin1');
const MAX_VERSION = 3;
const MAX_ATTR = 35;
const ATTR = { MODE: 5, RDEV: 8, INO: 3, XATTR_NAME: 13, XATTR_DATA: 14, PATH: 15, DATA: 19 } as const;
const CMD = { MKNOD: 5, SET_XATTR: 13, CHMOD: 18, END: 21 } as const;
const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** The attributes of one command as btrfs-progs keeps them: one value per type, the last one given. */
export type ReceiveAttributes = ReadonlyMap<number, Buffer>;

/** What btrfs receive does with one command, as far as privilege goes. */
export type ReceiveEffect =
  /** The command fails (an attribute missing or mis-sized, or the kernel refuses it): nothing of it is applied. */
  | { applied: false; reason: string }
  /** The command is applied; `privileged` names what it creates that `refuse` must keep out, or is null. */
  | { applied: true; privileged: string | null };

/** btrfs-progs' TLV_GET_U64: exactly 8 bytes, or the command fails. */
function u64(attrs: ReceiveAttributes, type: number): bigint | undefined {
  const v = attrs.get(type);
  return v?.length === 8 ? v.readBigUInt64LE(0) : undefined;
}

/** A C string: the bytes before the first NUL (tlv_get_string's copy, as the libc call reads it). */
export function cString(bytes: Buffer): Buffer {
  const nul = bytes.indexOf(0);
  return nul < 0 ? bytes : bytes.subarray(0, nul);
}

/** The mode_t that btrfs-progs passes for a u64 MODE: its low 32 bits. */
function modeT(mode: bigint): number {
  return Number(mode & 0xffffffffn);
}

/** What chmod(2) leaves on the inode: the permission bits of the mode_t (the kernel keeps S_IALLUGO, 07777). */
export function chmodApplies(mode: bigint): number {
  return modeT(mode) & 0o7777;
}

/** The file type mknod(2) creates, or undefined when the kernel refuses it. */
export function mknodCreates(mode: bigint): 'regular' | 'char' | 'block' | 'fifo' | 'socket' | undefined {
  const type = modeT(mode) & S_IFMT;
  if (type === 0 || type === 0o100000) return 'regular';
  if (type === S_IFCHR) return 'char';
  if (type === S_IFBLK) return 'block';
  if (type === 0o010000) return 'fifo';
  if (type === 0o140000) return 'socket';
  return undefined;
}

/** What btrfs receive does with command `cmd` given `attrs` (read_and_process_cmd, then the process_* callback). */
export function receiveEffect(cmd: number, attrs: ReceiveAttributes): ReceiveEffect {
  const need = (...types: number[]): string | undefined => {
    const missing = types.find((t) => !attrs.has(t));
    return missing === undefined ? undefined : `attribute ${missing} is missing`;
  };
  if (cmd === CMD.CHMOD) {
    const missing = need(ATTR.PATH);
    const mode = u64(attrs, ATTR.MODE);
    if (missing !== undefined || mode === undefined) return { applied: false, reason: missing ?? 'MODE is not a u64' };
    const perms = chmodApplies(mode);
    return { applied: true, privileged: perms & 0o4000 ? 'setuid' : perms & 0o2000 ? 'setgid' : null };
  }
  if (cmd === CMD.MKNOD) {
    const missing = need(ATTR.PATH);
    const [ino, mode, rdev] = [u64(attrs, ATTR.INO), u64(attrs, ATTR.MODE), u64(attrs, ATTR.RDEV)];
    if (missing !== undefined || ino === undefined || mode === undefined || rdev === undefined) {
      return { applied: false, reason: missing ?? 'INO, MODE or RDEV is not a u64' };
    }
    const made = mknodCreates(mode);
    if (made === undefined) return { applied: false, reason: 'mknod(2) refuses the type' };
    return { applied: true, privileged: made === 'char' || made === 'block' ? `${made} device` : null };
  }
  if (cmd === CMD.SET_XATTR) {
    const missing = need(ATTR.PATH, ATTR.XATTR_NAME, ATTR.XATTR_DATA);
    if (missing !== undefined) return { applied: false, reason: missing };
    const name = cString(attrs.get(ATTR.XATTR_NAME)!).toString('latin1');
    return { applied: true, privileged: name === 'security.capability' ? 'file capabilities' : null };
  }
  // Everything else creates nothing privileged by itself (the rules on paths and clones are not modelled here).
  return { applied: true, privileged: null };
}

/** One command as btrfs receive read it. */
export interface ReceivedCommand {
  index: number;
  cmd: number;
  effect: ReceiveEffect;
}

export interface ReceiveRun {
  /** The commands read, in order, up to and including the one that stopped the stream. */
  commands: ReceivedCommand[];
  /** Why receive stopped: 'END', or the error that ended it. */
  stop: string;
}

/**
 * Reads a whole stream as btrfs receive does, with `-E 1` (stop at the first failed command) and `-e` (stop at END).
 * Returns every command read and what it did.
 */
export function receiveStream(stream: Buffer): ReceiveRun {
  const commands: ReceivedCommand[] = [];
  if (stream.length < 17) return { commands, stop: 'no stream header' };
  if (!stream.subarray(0, 13).equals(MAGIC)) return { commands, stop: 'unexpected header' };
  const version = stream.readUInt32LE(13);
  if (version > MAX_VERSION) return { commands, stop: `version ${version}` };
  let pos = 17;
  for (let index = 0; ; index++) {
    if (stream.length - pos < 10) return { commands, stop: 'unexpected EOF' };
    const len = stream.readUInt32LE(pos);
    const cmd = stream.readUInt16LE(pos + 4);
    const crc = stream.readUInt32LE(pos + 6);
    if (stream.length - pos - 10 < len) return { commands, stop: 'unexpected EOF' };
    const whole = Buffer.from(stream.subarray(pos, pos + 10 + len));
    whole.writeUInt32LE(0, 6);
    if (kernelCrc32c(0, whole) !== crc) return { commands, stop: 'crc32 mismatch' };
    const attrs = readAttributes(whole.subarray(10), version);
    pos += 10 + len;
    if (typeof attrs === 'string') return { commands, stop: attrs };
    if (cmd === CMD.END) return { commands, stop: 'END' };
    const effect = receiveEffect(cmd, attrs);
    commands.push({ index, cmd, effect });
    if (!effect.applied) return { commands, stop: effect.reason };
  }
}

/** read_cmd's TLV loop; a string says why the command is malformed. */
function readAttributes(body: Buffer, version: number): Map<number, Buffer> | string {
  const attrs = new Map<number, Buffer>();
  let pos = 0;
  while (pos < body.length) {
    if (body.length - pos < 2) return 'send stream is truncated';
    const type = body.readUInt16LE(pos);
    if (type === 0 || type > MAX_ATTR) return `invalid tlv in cmd tlv_type = ${type}`;
    pos += 2;
    let len: number;
    if (version >= 2 && type === ATTR.DATA) len = body.length - pos;
    else {
      if (body.length - pos < 2) return 'send stream is truncated';
      len = body.readUInt16LE(pos);
      pos += 2;
    }
    if (body.length - pos < len) return 'send stream is truncated';
    attrs.set(type, body.subarray(pos, pos + len));
    pos += len;
  }
  return attrs;
}
