/**
 * The attributes (TLVs) inside one send-stream command: walking them with the same rules as btrfs receive
 * (btrfs-progs common/send-stream.c read_cmd), reading typed values, and decoding the first command into the
 * subvolume that the stream creates.
 */
import {
  formatSendUuid,
  SEND_MAX_ATTR,
  SEND_TLV_HEADER_LENGTH,
  SendAttr,
  SendCmd,
  sendAttributeName,
} from './sendstream-format.ts';

export interface SendAttribute {
  type: number;
  /**
   * A view into the stream's own bytes, not a copy: valid only while the command is being visited (the parser
   * reuses its buffer for commands that span chunks). Copy what must outlive the visit.
   */
  value: Buffer;
}

/** Why a command's TLVs do not fit; `at` is the attribute's offset inside the command body. */
export interface AttributeProblem {
  at: number;
  reason: string;
  type?: number;
}

/**
 * Walks the TLVs of `body` and checks that each has a known type and lies inside the command. When `out` is given,
 * it receives every attribute (views, no copies). Returns the first problem, or undefined when the body is sound.
 */
export function walkSendAttributes(body: Buffer, version: number, out?: SendAttribute[]): AttributeProblem | undefined {
  const end = body.length;
  let pos = 0;
  while (pos < end) {
    if (end - pos < 2) return { at: pos, reason: 'an attribute header is cut by the end of its command' };
    const type = body.readUInt16LE(pos);
    if (type === 0 || type > SEND_MAX_ATTR) return { at: pos, reason: `unknown attribute type ${type}`, type };
    let start: number;
    let stop: number;
    if (version >= 2 && type === SendAttr.DATA) {
      // Since version 2, DATA has no length: it runs to the end of the command.
      start = pos + 2;
      stop = end;
    } else {
      if (end - pos < SEND_TLV_HEADER_LENGTH) {
        return { at: pos, reason: `the header of attribute ${sendAttributeName(type)} is cut by the end of its command`, type };
      }
      start = pos + SEND_TLV_HEADER_LENGTH;
      stop = start + body.readUInt16LE(pos + 2);
      if (stop > end) {
        return {
          at: pos,
          reason: `attribute ${sendAttributeName(type)} claims ${stop - start} bytes but its command has ${end - start} left`,
          type,
        };
      }
    }
    out?.push({ type, value: body.subarray(start, stop) });
    pos = stop;
  }
  return undefined;
}

/** The value of attribute `type`; the last one wins when repeated, as in btrfs receive. */
export function findSendAttribute(attrs: readonly SendAttribute[], type: number): Buffer | undefined {
  for (let i = attrs.length - 1; i >= 0; i--) {
    const attr = attrs[i];
    if (attr !== undefined && attr.type === type) return attr.value;
  }
  return undefined;
}

/** Paths and names are bytes in btrfs; decoded as UTF-8 (invalid sequences become U+FFFD). */
export function sendAttributeString(attrs: readonly SendAttribute[], type: number): string | undefined {
  return findSendAttribute(attrs, type)?.toString('utf8');
}

export function sendAttributeUuid(attrs: readonly SendAttribute[], type: number): string | undefined {
  const value = findSendAttribute(attrs, type);
  return value?.length === 16 ? formatSendUuid(value) : undefined;
}

/**
 * A u64 exactly as btrfs receive reads it (TLV_GET_U64 in btrfs-progs common/send-stream.c: exactly 8 bytes,
 * little-endian, into a u64). Undefined only when the attribute is absent or not 8 bytes long, which btrfs receive
 * refuses too: it applies nothing of that command. Every value a rule judges is read with this one.
 */
export function sendAttributeBigU64(attrs: readonly SendAttribute[], type: number): bigint | undefined {
  const value = findSendAttribute(attrs, type);
  return value?.length === 8 ? value.readBigUInt64LE(0) : undefined;
}

/**
 * A u64 that must also fit a JS number exactly (transaction ids, sizes for estimates); undefined when absent,
 * mis-sized or above 2^53. Never judge a rule with it: a huge value would read as absent and skip the rule, while
 * btrfs receive applies it (it keeps the low 32 bits of a mode, issue 17).
 */
export function sendAttributeU64(attrs: readonly SendAttribute[], type: number): number | undefined {
  const n = sendAttributeBigU64(attrs, type);
  return n !== undefined && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : undefined;
}

/** What the stream's first command says it creates. `path` is the new subvolume's name. */
export type SendStreamSubvolume =
  | { kind: 'subvol'; path: string; uuid: string; ctransid: number }
  | { kind: 'snapshot'; path: string; uuid: string; ctransid: number; cloneUuid: string; cloneCtransid: number };

/** The stream header's version together with its first command. */
export type SendStreamHeader = SendStreamSubvolume & { version: number };

/**
 * Decodes a SUBVOL or SNAPSHOT command. Returns a string saying what is missing when it is neither or lacks an
 * attribute that btrfs receive needs (process_subvol/process_snapshot read exactly these).
 */
export function readSendSubvolume(cmd: number, attrs: readonly SendAttribute[]): SendStreamSubvolume | string {
  if (cmd !== SendCmd.SUBVOL && cmd !== SendCmd.SNAPSHOT) return 'it is neither SUBVOL nor SNAPSHOT';
  const path = sendAttributeString(attrs, SendAttr.PATH);
  const uuid = sendAttributeUuid(attrs, SendAttr.UUID);
  const ctransid = sendAttributeU64(attrs, SendAttr.CTRANSID);
  if (path === undefined || path === '') return 'it has no PATH';
  if (uuid === undefined) return 'it has no 16-byte UUID';
  if (ctransid === undefined) return 'it has no 8-byte CTRANSID';
  if (cmd === SendCmd.SUBVOL) return { kind: 'subvol', path, uuid, ctransid };
  const cloneUuid = sendAttributeUuid(attrs, SendAttr.CLONE_UUID);
  const cloneCtransid = sendAttributeU64(attrs, SendAttr.CLONE_CTRANSID);
  if (cloneUuid === undefined) return 'it has no 16-byte CLONE_UUID';
  if (cloneCtransid === undefined) return 'it has no 8-byte CLONE_CTRANSID';
  return { kind: 'snapshot', path, uuid, ctransid, cloneUuid, cloneCtransid };
}
