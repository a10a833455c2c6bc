/**
 * The btrfs send stream format, in one place: the stream header, the command header, the command and attribute
 * tables, the CRC32C variant, and how btrfs prints UUIDs.
 *
 * Source of truth: btrfs-progs `common/send-stream.h`/`kernel-shared/send.h` and the kernel's `fs/btrfs/send.h`
 * (the same enums on both sides), checked against streams made by `btrfs send` (btrfs-progs 6.2, kernel 6.18).
 *
 *   stream  = magic "btrfs-stream\0" (13 bytes) + u32 LE version, then commands until END
 *   command = u32 LE len (bytes after this 10-byte header) + u16 LE cmd + u32 LE crc, then `len` bytes of TLVs
 *   TLV     = u16 LE type + u16 LE len + value; except, from version 2 on, BTRFS_SEND_A_DATA carries only its type:
 *             "it must be the last attribute in a command, its header contains only the type, and its length is
 *             implicitly the remaining length of the command" (send.h).
 */
import { crc32c } from '@node-rs/crc32';

export const SEND_STREAM_MAGIC = Buffer.from('btrfs-stream\0', 'latin1');
/** Magic (13) + u32 version. */
export const SEND_STREAM_HEADER_LENGTH = 17;
/** u32 len + u16 cmd + u32 crc. */
export const SEND_COMMAND_HEADER_LENGTH = 10;
/** Where the crc sits inside the command header; it is computed with these 4 bytes zeroed. */
export const SEND_COMMAND_CRC_OFFSET = 6;
export const SEND_TLV_HEADER_LENGTH = 4;

export const SEND_STREAM_MIN_VERSION = 1;
export const SEND_STREAM_MAX_VERSION = 3;

/**
 * The largest command body (`len`, header excluded) we accept. The kernel never writes more than its send buffer:
 * 64 KiB (BTRFS_SEND_BUF_SIZE_V1) in version 1, and ALIGN(16 KiB + BTRFS_MAX_COMPRESSED (128 KiB), PAGE_SIZE) from
 * version 2 on (144 KiB; 192 KiB on 64 KiB pages). 2 MiB leaves room for a future kernel while keeping a reader's
 * memory bounded against a corrupt length claim of up to 4 GiB.
 */
export const SEND_MAX_COMMAND_LENGTH = 2 * 1024 * 1024;

/** enum btrfs_send_cmd. */
export const SendCmd = {
  SUBVOL: 1,
  SNAPSHOT: 2,
  MKFILE: 3,
  MKDIR: 4,
  MKNOD: 5,
  MKFIFO: 6,
  MKSOCK: 7,
  SYMLINK: 8,
  RENAME: 9,
  LINK: 10,
  UNLINK: 11,
  RMDIR: 12,
  SET_XATTR: 13,
  REMOVE_XATTR: 14,
  WRITE: 15,
  CLONE: 16,
  TRUNCATE: 17,
  CHMOD: 18,
  CHOWN: 19,
  UTIMES: 20,
  END: 21,
  UPDATE_EXTENT: 22,
  // Version 2
  FALLOCATE: 23,
  FILEATTR: 24,
  ENCODED_WRITE: 25,
  // Version 3
  ENABLE_VERITY: 26,
} as const;
export type SendCmdName = keyof typeof SendCmd;

/** Highest command number per stream version (BTRFS_SEND_C_MAX_V1/V2/V3). UPDATE_EXTENT (22) is a version 1 command. */
const MAX_CMD_BY_VERSION: Readonly<Record<number, number>> = { 1: 22, 2: 25, 3: 26 };

/** enum btrfs_send_attr (BTRFS_SEND_A_*). */
export const SendAttr = {
  UUID: 1,
  CTRANSID: 2,
  INO: 3,
  SIZE: 4,
  MODE: 5,
  UID: 6,
  GID: 7,
  RDEV: 8,
  CTIME: 9,
  MTIME: 10,
  ATIME: 11,
  OTIME: 12,
  XATTR_NAME: 13,
  XATTR_DATA: 14,
  PATH: 15,
  PATH_TO: 16,
  PATH_LINK: 17,
  FILE_OFFSET: 18,
  DATA: 19,
  CLONE_UUID: 20,
  CLONE_CTRANSID: 21,
  CLONE_PATH: 22,
  CLONE_OFFSET: 23,
  CLONE_LEN: 24,
  // Version 2
  FALLOCATE_MODE: 25,
  FILEATTR: 26,
  UNENCODED_FILE_LEN: 27,
  UNENCODED_LEN: 28,
  UNENCODED_OFFSET: 29,
  COMPRESSION: 30,
  ENCRYPTION: 31,
  // Version 3
  VERITY_ALGORITHM: 32,
  VERITY_BLOCK_SIZE: 33,
  VERITY_SALT_DATA: 34,
  VERITY_SIG_DATA: 35,
} as const;
export type SendAttrName = keyof typeof SendAttr;

/**
 * btrfs receive accepts any type in 1..__BTRFS_SEND_A_MAX whatever the stream version (send-stream.c read_cmd),
 * so we do too: a stricter reader would reject streams that btrfs receive applies.
 */
export const SEND_MAX_ATTR = 35;

function invert<T extends Record<string, number>>(table: T): ReadonlyArray<keyof T & string> {
  const names: Array<keyof T & string> = [];
  for (const [name, value] of Object.entries(table)) names[value] = name as keyof T & string;
  return names;
}

const CMD_NAMES = invert(SendCmd);
const ATTR_NAMES = invert(SendAttr);

/** `WRITE` for 15; `UNKNOWN_99` for numbers outside the table (only ever seen in error messages). */
export function sendCommandName(cmd: number): string {
  return CMD_NAMES[cmd] ?? `UNKNOWN_${cmd}`;
}

export function sendAttributeName(type: number): string {
  return ATTR_NAMES[type] ?? `UNKNOWN_${type}`;
}

/** Whether `cmd` is a command that a stream of `version` may carry. */
export function isKnownSendCommand(cmd: number, version: number): boolean {
  const max = MAX_CMD_BY_VERSION[version];
  return max !== undefined && cmd >= 1 && cmd <= max;
}

/** CRC-32C (Castagnoli, reflected 0x82f63b78) a byte at a time: for the 10 bytes of a command header only. */
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * The command CRC as btrfs computes it: the kernel's `crc32c(0, buf, len)` over the 10-byte header with the crc field
 * zeroed, then the body. The kernel's crc32c() takes a raw seed and applies no inversion, while @node-rs/crc32's
 * `crc32c(input, initial)` is the standard CRC-32C (state inverted on entry and exit). Hence raw(0, x) =
 * ~crc32c(x, 0xffffffff); chaining the standard function over slices keeps that identity, so the header and body
 * need not be contiguous or copied. Checked on real streams: `crc32c(cmd)` (standard) does NOT match, this does.
 *
 * The header (its first 6 bytes, then 4 zero bytes for the crc field) is folded in here, a byte at a time, and only
 * the body goes to the native call: one call per command instead of three, which for a stream of small commands
 * (metadata, 130,000 a GB on the bench's data) cost more than the CRC of the bytes themselves (issue 22). The header
 * is read at `headerAt` in `header`, so that a command inside a larger buffer needs no view of its own.
 */
export function sendCommandCrc(header: Uint8Array, body: Uint8Array, headerAt = 0): number {
  let raw = 0;
  for (let i = headerAt; i < headerAt + SEND_COMMAND_CRC_OFFSET; i++) raw = CRC32C_TABLE[(raw ^ header[i]!) & 0xff]! ^ (raw >>> 8);
  for (let i = 0; i < SEND_COMMAND_HEADER_LENGTH - SEND_COMMAND_CRC_OFFSET; i++) raw = CRC32C_TABLE[raw & 0xff]! ^ (raw >>> 8);
  if (body.length === 0) return raw >>> 0;
  return (crc32c(body, ~raw >>> 0) ^ 0xffffffff) >>> 0;
}

/** 16 bytes -> `9ccd62c5-1263-3d41-a5f0-be73a8576903`, the way `btrfs subvolume show` prints it (uuid_unparse). */
export function formatSendUuid(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
