/**
 * Renames the subvolume a send stream creates, on the fly. `btrfs receive` names the new subvolume after the sending
 * side's directory, in the folder it is given, and btrfs refuses to move a read-only subvolume to another folder
 * (EROFS) though it allows a rename within one. So a receive (core/receive) rewrites the first command's PATH to a
 * staging name (a dot name no snapshot can have), receives into the folder the snapshot belongs in, and renames the
 * checked result in place.
 * A half-received snapshot thus never carries a snapshot's name, and two streams that both call themselves
 * `snapshot` (snapper) never collide.
 *
 * Push renames too, before framing (core/wire/stream-naming.ts): btrfs send writes the snapshot's directory name
 * there, and a stream that changed with a `mv` of the snapshot could not be resumed after one.
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
import { pushStep, type ChunkStep } from './chunk-step.ts';
import { isSafeName } from '../names.ts';

/** The attributes of the first command of `head` (the stream from its first byte, that command whole). */
export function firstCommandAttributes(head: Buffer): SendAttribute[] {
  const version = head.readUInt32LE(SEND_STREAM_HEADER_LENGTH - 4);
  const bodyLength = head.readUInt32LE(SEND_STREAM_HEADER_LENGTH);
  const bodyStart = SEND_STREAM_HEADER_LENGTH + SEND_COMMAND_HEADER_LENGTH;
  const attrs: SendAttribute[] = [];
  if (walkSendAttributes(head.subarray(bodyStart, bodyStart + bodyLength), version, attrs) !== undefined) {
    throw new SnapferryError('sendstream_bad_command', 'the first command of the send stream is malformed');
  }
  return attrs;
}

export function renameFirstCommand(head: Buffer, newName: string): Buffer {
  const cmdStart = SEND_STREAM_HEADER_LENGTH;
  const bodyLength = head.readUInt32LE(cmdStart);
  const bodyStart = cmdStart + SEND_COMMAND_HEADER_LENGTH;
  const attrs = firstCommandAttributes(head);
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

/**
 * The new name is ours, yet it goes into a path btrfs receive joins: it must be one plain component, a staging dot
 * name (a receive) or a snapshot name (core/names.ts; a push's, stream-naming.ts).
 */
const STAGING_NAME_RE = /^\.[A-Za-z0-9._-]{1,200}$/;

function assertPlainName(name: string): string {
  if ((!STAGING_NAME_RE.test(name) && !isSafeName(name)) || name === '..') throw new Error(`bad name for a send stream ${JSON.stringify(name)}`);
  return name;
}

/** Decides the new name once the start of the stream is in (push's naming of a resumed upload: stream-naming.ts). */
export interface NameChooser {
  /** Bytes from the stream's first byte it needs to see (fewer only when the stream is shorter). */
  readonly lookahead: number;
  /** `head`: the stream from its first byte, the first command whole; `ended`: no byte follows it. */
  choose(head: Buffer, ended: boolean): string;
}

/**
 * The renaming itself, without a stream of its own: `take` each chunk in order and pass on what it returns, then
 * what `end` returns. The first command is held until it is whole (and the chooser's lookahead is in); every later
 * chunk comes back as it is. Throws on a first command that cannot be renamed.
 */
export class FirstCommandRename implements ChunkStep {
  private head: Buffer[] = [];
  private headBytes = 0;
  private done = false;

  constructor(private readonly naming: string | NameChooser) {
    if (typeof naming === 'string') assertPlainName(naming);
  }

  take(chunk: Buffer): Buffer[] {
    if (this.done) return [chunk];
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const needHeader = SEND_STREAM_HEADER_LENGTH + SEND_COMMAND_HEADER_LENGTH;
    if (this.headBytes < needHeader) return [];
    // Only the headers are joined until the whole head is in: a chooser's lookahead may span many small reads.
    const bodyLength = Buffer.concat(this.head, needHeader).readUInt32LE(SEND_STREAM_HEADER_LENGTH);
    // The check before this refuses such a length first; this keeps the renamer's memory bounded on its own.
    if (bodyLength > SEND_MAX_COMMAND_LENGTH) {
      throw new SnapferryError('sendstream_too_large', `the send stream's first command claims ${bodyLength} bytes`);
    }
    const lookahead = typeof this.naming === 'string' ? 0 : this.naming.lookahead;
    if (this.headBytes < Math.max(needHeader + bodyLength, lookahead)) return [];
    return [this.renamed(false)];
  }

  end(): Buffer[] {
    if (this.done || this.headBytes === 0) return [];
    const needHeader = SEND_STREAM_HEADER_LENGTH + SEND_COMMAND_HEADER_LENGTH;
    const whole = this.headBytes >= needHeader && this.headBytes >= needHeader + Buffer.concat(this.head, needHeader).readUInt32LE(SEND_STREAM_HEADER_LENGTH);
    if (!whole) throw new SnapferryError('sendstream_truncated', 'the send stream ends inside its first command');
    // A stream shorter than the chooser's lookahead: it decides on all there is.
    return [this.renamed(true)];
  }

  private renamed(ended: boolean): Buffer {
    const all = Buffer.concat(this.head);
    this.done = true;
    this.head = [];
    const name = typeof this.naming === 'string' ? this.naming : assertPlainName(this.naming.choose(all, ended));
    return renameFirstCommand(all, name);
  }
}

/** The renaming as a stream stage. */
export class FirstCommandRenamer extends Transform {
  readonly #rename: FirstCommandRename;

  constructor(naming: string | NameChooser) {
    super();
    this.#rename = new FirstCommandRename(naming);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    pushStep(this, () => this.#rename.take(chunk), callback);
  }

  override _flush(callback: TransformCallback): void {
    pushStep(this, () => this.#rename.end(), callback);
  }
}
