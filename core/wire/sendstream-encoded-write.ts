/**
 * The sizes of an ENCODED_WRITE, checked because btrfs receive trusts them where it matters most: when the kernel's
 * encoded-write ioctl refuses the command (EINVAL, which is what bad sizes get), btrfs-progs decompresses it itself
 * into calloc(UNENCODED_LEN) and writes UNENCODED_FILE_LEN bytes from UNENCODED_OFFSET of that buffer, unchecked
 * (cmds/receive.c decompress_and_write): a huge allocation, or file contents read from past the buffer.
 */
import { findSendAttribute, sendAttributeBigU64 } from './sendstream-attributes.ts';
import { SendAttr } from './sendstream-format.ts';
import type { SendCommand } from './sendstream-command.ts';

/**
 * The kernel's own bounds for an encoded extent (BTRFS_MAX_UNCOMPRESSED, BTRFS_MAX_COMPRESSED: 128 KiB each), which
 * btrfs send never exceeds: it sends one extent per ENCODED_WRITE, as it lies on disk.
 */
const MAX_ENCODED_BYTES = 128 * 1024;
const MAX_ENCODED_BYTES_U64 = BigInt(MAX_ENCODED_BYTES);
/** enum btrfs_encoded_io_compression: ZLIB 1, ZSTD 2, LZO_4K..LZO_64K 3..7. NONE (0) is never encoded. */
const MAX_ENCODED_COMPRESSION = 7;

/** What is wrong with an ENCODED_WRITE that btrfs send would never write, and its figures for the error's details. */
export interface EncodedWriteFault {
  reason: string;
  details: Record<string, unknown>;
}

/** Why the ENCODED_WRITE with these attributes is not one btrfs send makes, or undefined when it is one. */
export function encodedWriteFault(attrs: SendCommand['attributes']): EncodedWriteFault | undefined {
  const unencodedLen = sendAttributeBigU64(attrs, SendAttr.UNENCODED_LEN);
  const fileLen = sendAttributeBigU64(attrs, SendAttr.UNENCODED_FILE_LEN);
  const offset = sendAttributeBigU64(attrs, SendAttr.UNENCODED_OFFSET);
  const compression = attributeU32(attrs, SendAttr.COMPRESSION);
  const encryption = attributeU32(attrs, SendAttr.ENCRYPTION) ?? 0;
  const dataBytes = findSendAttribute(attrs, SendAttr.DATA)?.length ?? 0;
  let reason: string | undefined;
  if (unencodedLen === undefined || fileLen === undefined || offset === undefined || compression === undefined) {
    reason = 'it lacks one of UNENCODED_LEN, UNENCODED_FILE_LEN, UNENCODED_OFFSET (u64) or COMPRESSION (u32)';
  } else if (unencodedLen > MAX_ENCODED_BYTES_U64) {
    reason = `its UNENCODED_LEN is ${unencodedLen} bytes, over the ${MAX_ENCODED_BYTES} of an encoded extent`;
  } else if (offset + fileLen > unencodedLen) {
    reason = `UNENCODED_OFFSET ${offset} + UNENCODED_FILE_LEN ${fileLen} runs past UNENCODED_LEN ${unencodedLen}`;
  } else if (dataBytes > MAX_ENCODED_BYTES) {
    reason = `it carries ${dataBytes} bytes of encoded data, over the ${MAX_ENCODED_BYTES} of an encoded extent`;
  } else if (compression < 1 || compression > MAX_ENCODED_COMPRESSION) {
    reason = `its COMPRESSION is ${compression}, not one btrfs knows (1..${MAX_ENCODED_COMPRESSION})`;
  } else if (encryption !== 0) {
    reason = `its ENCRYPTION is ${encryption}; btrfs has no encrypted extents`;
  }
  if (reason === undefined) return undefined;
  return {
    reason,
    details: {
      unencodedLen: u64Detail(unencodedLen),
      unencodedFileLen: u64Detail(fileLen),
      unencodedOffset: u64Detail(offset),
      compression: compression ?? null,
      encryption,
      dataBytes,
    },
  };
}

/** A u64 for error details, which end up as JSON: a number when it is one exactly, else its decimal string. */
function u64Detail(value: bigint | undefined): number | string | null {
  if (value === undefined) return null;
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
}

/** A u32 attribute (COMPRESSION, ENCRYPTION); undefined when absent or mis-sized. */
function attributeU32(attrs: SendCommand['attributes'], type: number): number | undefined {
  const value = findSendAttribute(attrs, type);
  return value?.length === 4 ? value.readUInt32LE(0) : undefined;
}
