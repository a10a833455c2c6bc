/**
 * Builds small btrfs send streams for tests, byte by byte, with its own CRC32C (a table-driven copy of the kernel's
 * lib/crc32c: reflected polynomial 0x82F63B78, raw seed, no inversion) so that the parser's CRC is checked against
 * an independent implementation rather than against itself.
 */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The kernel's `crc32c(seed, buf, len)`: no pre- or post-inversion. */
export function kernelCrc32c(seed: number, bytes: Uint8Array): number {
  let crc = seed >>> 0;
  for (let i = 0; i < bytes.length; i++) crc = (CRC_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8)) >>> 0;
  return crc;
}

export const Cmd = {
  SUBVOL: 1, SNAPSHOT: 2, MKFILE: 3, MKDIR: 4, RENAME: 9, WRITE: 15, CLONE: 16, TRUNCATE: 17, CHMOD: 18,
  CHOWN: 19, UTIMES: 20, END: 21, UPDATE_EXTENT: 22, FALLOCATE: 23, ENCODED_WRITE: 25,
} as const;

export const Attr = {
  UUID: 1, CTRANSID: 2, INO: 3, SIZE: 4, MODE: 5, UID: 6, GID: 7, MTIME: 10, PATH: 15, PATH_TO: 16,
  FILE_OFFSET: 18, DATA: 19, CLONE_UUID: 20, CLONE_CTRANSID: 21, CLONE_PATH: 22,
} as const;

export function streamHeader(version: number): Buffer {
  const header = Buffer.alloc(17);
  header.write('btrfs-stream\0', 0, 'latin1');
  header.writeUInt32LE(version, 13);
  return header;
}

export function tlv(type: number, value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const header = Buffer.alloc(4);
  header.writeUInt16LE(type, 0);
  header.writeUInt16LE(bytes.length, 2);
  return Buffer.concat([header, bytes]);
}

/** DATA as the kernel writes it: a plain TLV in version 1, a bare type running to the end of the command after. */
export function dataTlv(version: number, data: Buffer): Buffer {
  if (version === 1) return tlv(Attr.DATA, data);
  const type = Buffer.alloc(2);
  type.writeUInt16LE(Attr.DATA, 0);
  return Buffer.concat([type, data]);
}

export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n), 0);
  return b;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}

export function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replaceAll('-', ''), 'hex');
}

/** One command: header (len, cmd, crc over header-with-zero-crc + body) + body. */
export function command(cmd: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const out = Buffer.alloc(10 + body.length);
  out.writeUInt32LE(body.length, 0);
  out.writeUInt16LE(cmd, 4);
  body.copy(out, 10);
  out.writeUInt32LE(kernelCrc32c(0, out), 6);
  return out;
}

export const SAMPLE = {
  path: 'home-2024-01-01',
  uuid: '0ee74cad-645d-9f4f-ad2e-12a379694756',
  ctransid: 4242,
  cloneUuid: '9ccd62c5-1263-3d41-a5f0-be73a8576903',
  cloneCtransid: 4100,
  fileData: Buffer.from('hello, snapferry\n'),
};

export function subvolCommand(path = SAMPLE.path, uuid = SAMPLE.uuid, ctransid = SAMPLE.ctransid): Buffer {
  return command(Cmd.SUBVOL, tlv(Attr.PATH, path), tlv(Attr.UUID, uuidBytes(uuid)), tlv(Attr.CTRANSID, u64(ctransid)));
}

export function snapshotCommand(): Buffer {
  return command(
    Cmd.SNAPSHOT,
    tlv(Attr.PATH, SAMPLE.path),
    tlv(Attr.UUID, uuidBytes(SAMPLE.uuid)),
    tlv(Attr.CTRANSID, u64(SAMPLE.ctransid)),
    tlv(Attr.CLONE_UUID, uuidBytes(SAMPLE.cloneUuid)),
    tlv(Attr.CLONE_CTRANSID, u64(SAMPLE.cloneCtransid)),
  );
}

export function writeCommand(version: number, path: string, offset: number, data: Buffer): Buffer {
  return command(Cmd.WRITE, tlv(Attr.PATH, path), tlv(Attr.FILE_OFFSET, u64(offset)), dataTlv(version, data));
}

export const END = command(Cmd.END);

/** The commands of a small full send of one file, without stream header and END. */
export function sampleBody(version: number): Buffer[] {
  return [
    subvolCommand(),
    command(Cmd.MKFILE, tlv(Attr.PATH, 'o257-7-0'), tlv(Attr.INO, u64(257))),
    command(Cmd.RENAME, tlv(Attr.PATH, 'o257-7-0'), tlv(Attr.PATH_TO, 'hello.txt')),
    writeCommand(version, 'hello.txt', 0, SAMPLE.fileData),
    command(Cmd.CHOWN, tlv(Attr.PATH, 'hello.txt'), tlv(Attr.UID, u64(0)), tlv(Attr.GID, u64(0))),
    command(Cmd.CHMOD, tlv(Attr.PATH, 'hello.txt'), tlv(Attr.MODE, u64(0o644))),
  ];
}

/** A whole valid stream: header, sample commands, END. */
export function sampleStream(version = 1): Buffer {
  return Buffer.concat([streamHeader(version), ...sampleBody(version), END]);
}

/** Same stream, first command replaced. */
export function streamWithFirst(first: Buffer, version = 1): Buffer {
  return Buffer.concat([streamHeader(version), first, ...sampleBody(version).slice(1), END]);
}

/** `bytes` cut into views of `size` bytes (the last may be shorter). */
export function slices(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}
