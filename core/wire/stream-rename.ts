/**
 * Renames the subvolume a send stream creates, on the fly. `btrfs receive` names the new subvolume after the sending
 * side's directory, in the folder it is given, and btrfs refuses to move a read-only subvolume to another folder
 * (EROFS) though it allows a rename within one. So a receive (core/receive) rewrites the first command's PATH to a
 * staging name (a dot name no snapshot can have), receives into the folder the snapshot belongs in, and renames the
 * checked result in place.
 * A half-received snapshot thus never carries a snapshot's name, and two streams that both call themselves
 * `snapshot` (snapper) never collide.
 *
 * Only the stream header and the first command are touched (length and CRC recomputed); every later byte passes
 * through unchanged.
 */
import { Transform, type TransformCallback } from 'node:stream';
import {
  SEND_COMMAND_CRC_OFFSET,
  SEND_COMMAND_HEADER_LENGTH,
  SEND_MAX_COMMAND_LENGTH,
  SEND_STREAM_HEADER_LENGTH,
  SEND_TLV_HEADER_LENGTH,
  SendAttr,
  sendCommandCrc,
} from './sendstream-format.ts';
import { walkSendAttributes, type SendAttribute } from './sendstream-attributes.ts';
import { SnapferryError } from '../errors.ts';

export function renameFirstCommand(head: Buffer, newName: string): Buffer {
  const version = head.readUInt32LE(SEND_STREAM_HEADER_LENGTH - 4);
  const cmdStart = SEND_STREAM_HEADER_LENGTH;
  const bodyLength = head.readUInt32LE(cmdStart);
  const bodyStart = cmdStart + SEND_COMMAND_HEADER_LENGTH;
  const body = head.subarray(bodyStart, bodyStart + bodyLength);
  const attrs: SendAttribute[] = [];
  if (walkSendAttributes(body, version, attrs) !== undefined) {
    throw new SnapferryError('sendstream_bad_command', 'the first command of the send stream is malformed');
  }
  const name = Buffer.from(newName, 'utf8');
  const parts: Buffer[] = [];
  for (const a of attrs) {
    const value = a.type === SendAttr.PATH ? name : a.value;
    const tlv = Buffer.alloc(SEND_TLV_HEADER_LENGTH);
    tlv.writeUInt16LE(a.type, 0);
    tlv.writeUInt16LE(value.length, 2);
    parts.push(tlv, value);
  }
  const newBody = Buffer.concat(parts);
  const header = Buffer.from(head.subarray(cmdStart, bodyStart));
  header.writeUInt32LE(newBody.length, 0);
  header.writeUInt32LE(0, SEND_COMMAND_CRC_OFFSET);
  header.writeUInt32LE(sendCommandCrc(header, newBody), SEND_COMMAND_CRC_OFFSET);
  return Buffer.concat([head.subarray(0, cmdStart), header, newBody, head.subarray(bodyStart + bodyLength)]);
}

/** The staging name is ours, yet it goes into a path btrfs receive joins: it must be one plain component. */
const STAGING_NAME_RE = /^\.[A-Za-z0-9._-]{1,200}$/;

export class FirstCommandRenamer extends Transform {
  private head: Buffer[] = [];
  private headBytes = 0;
  private done = false;

  constructor(private readonly newName: string) {
    super();
    if (!STAGING_NAME_RE.test(newName) || newName === '..') throw new Error(`bad staging name ${JSON.stringify(newName)}`);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.done) return callback(null, chunk);
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const needHeader = SEND_STREAM_HEADER_LENGTH + SEND_COMMAND_HEADER_LENGTH;
    if (this.headBytes < needHeader) return callback();
    const all = Buffer.concat(this.head);
    const bodyLength = all.readUInt32LE(SEND_STREAM_HEADER_LENGTH);
    // The check before this refuses such a length first; this keeps the renamer's memory bounded on its own.
    if (bodyLength > SEND_MAX_COMMAND_LENGTH) {
      return callback(new SnapferryError('sendstream_too_large', `the send stream's first command claims ${bodyLength} bytes`));
    }
    const total = needHeader + bodyLength;
    if (all.length < total) {
      this.head = [all];
      return callback();
    }
    this.done = true;
    this.head = [];
    try {
      callback(null, renameFirstCommand(all, this.newName));
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (!this.done && this.headBytes > 0) return callback(new SnapferryError('sendstream_truncated', 'the send stream ends inside its first command'));
    callback();
  }
}
