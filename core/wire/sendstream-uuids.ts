/**
 * Rewrites the UUIDs a btrfs send stream names, as it flows: the UUID of SUBVOL and SNAPSHOT (the Received UUID the
 * new subvolume gets), the CLONE_UUID of SNAPSHOT (the parent) and of CLONE (a clone source). These are the only
 * UUIDs `btrfs receive` acts on: it finds parents and clone sources by them (btrfs-progs cmds/receive.c
 * process_snapshot and process_clone: subvol_uuid_search by Received UUID, then by UUID), across the whole
 * filesystem. The server passes every stream through this with a per-client map, so that a client's UUIDs can name
 * only that client's subvolumes (server/uuid-namespace.ts), and through the reverse map on restore.
 *
 * A UUID is 16 bytes either way, so every command keeps its length: only the UUID bytes and the command's CRC32C
 * change, and byte offsets in the stream stay what they were. Commands that name no UUID pass through as they came,
 * uncopied. A command that is rewritten has its CRC checked first, so that a damaged command is never given a good
 * CRC here (the checks before this one refuse it anyway on the receive path).
 */
import { Transform, type TransformCallback } from 'node:stream';
import {
  SEND_COMMAND_CRC_OFFSET,
  SEND_COMMAND_HEADER_LENGTH,
  SEND_MAX_COMMAND_LENGTH,
  SEND_STREAM_HEADER_LENGTH,
  SendAttr,
  SendCmd,
  formatSendUuid,
  sendCommandCrc,
} from './sendstream-format.ts';
import { walkSendAttributes, type SendAttribute } from './sendstream-attributes.ts';
import { SendStreamError } from './sendstream-errors.ts';

/** From one UUID (lowercase, as formatSendUuid prints it) to another. */
export type SendUuidMap = (uuid: string) => string;

/** Which attributes of which commands hold a UUID that btrfs receive resolves or records. */
const UUID_ATTRS: ReadonlyMap<number, readonly number[]> = new Map([
  [SendCmd.SUBVOL, [SendAttr.UUID]],
  [SendCmd.SNAPSHOT, [SendAttr.UUID, SendAttr.CLONE_UUID]],
  [SendCmd.CLONE, [SendAttr.CLONE_UUID]],
]);

const UUID_TEXT_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function uuidToBytes(uuid: string): Buffer {
  if (!UUID_TEXT_RE.test(uuid)) throw new Error(`the UUID map gave ${JSON.stringify(uuid)}, not a lowercase UUID`);
  return Buffer.from(uuid.replaceAll('-', ''), 'hex');
}

/**
 * One whole command (its 10-byte header and body) with its UUIDs mapped and its CRC recomputed; a new buffer, or the
 * same one when the command names no UUID. Attributes that are not 16 bytes are left alone: btrfs receive refuses them.
 */
export function rewriteCommandUuids(command: Buffer, version: number, map: SendUuidMap): Buffer {
  const cmd = command.readUInt16LE(4);
  const types = UUID_ATTRS.get(cmd);
  if (types === undefined) return command;
  const out = Buffer.from(command);
  const header = out.subarray(0, SEND_COMMAND_HEADER_LENGTH);
  const body = out.subarray(SEND_COMMAND_HEADER_LENGTH);
  const attrs: SendAttribute[] = [];
  if (walkSendAttributes(body, version, attrs) !== undefined) return command;
  for (const a of attrs) {
    // Every copy of a repeated attribute: btrfs receive takes the last, a reader may take the first.
    if (types.includes(a.type) && a.value.length === 16) uuidToBytes(map(formatSendUuid(a.value))).copy(a.value);
  }
  header.writeUInt32LE(sendCommandCrc(header, body), SEND_COMMAND_CRC_OFFSET);
  return out;
}

/**
 * The stream, with rewriteCommandUuids applied to each command. Reads the stream header and each command header to
 * find the commands; holds at most one UUID-naming command (a few dozen bytes) at a time. After END, everything
 * passes unchanged.
 */
export class SendStreamUuidRewriter extends Transform {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** How many bytes the next piece needs: the stream header, a command header, or a whole command to rewrite. */
  #need = SEND_STREAM_HEADER_LENGTH;
  #state: 'stream-header' | 'command-header' | 'command' | 'pass' | 'done' = 'stream-header';
  /** Body bytes of a command that names no UUID still to pass through. */
  #passLeft = 0;
  #version = 0;
  #offset = 0;

  readonly #map: SendUuidMap;

  constructor(map: SendUuidMap) {
    super();
    this.#map = map;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#take(chunk);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.#state === 'done' || (this.#state === 'command-header' && this.#pendingBytes === 0) || (this.#state === 'pass' && this.#passLeft === 0)) {
      return callback();
    }
    callback(new SendStreamError('sendstream_truncated', `the send stream ends at byte ${this.#offset}, inside a command`, { offset: this.#offset }));
  }

  #take(chunk: Buffer): void {
    let rest = chunk;
    while (rest.length > 0) {
      if (this.#state === 'done') {
        this.#out(rest);
        return;
      }
      if (this.#state === 'pass') {
        const n = Math.min(this.#passLeft, rest.length);
        this.#out(rest.subarray(0, n));
        rest = rest.subarray(n);
        this.#passLeft -= n;
        if (this.#passLeft === 0) this.#expect('command-header', SEND_COMMAND_HEADER_LENGTH);
        continue;
      }
      const n = Math.min(this.#need - this.#pendingBytes, rest.length);
      this.#pending.push(rest.subarray(0, n));
      this.#pendingBytes += n;
      rest = rest.subarray(n);
      if (this.#pendingBytes === this.#need) this.#complete(Buffer.concat(this.#pending));
    }
  }

  /** A piece (stream header, command header, whole command) is complete. */
  #complete(piece: Buffer): void {
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#state === 'stream-header') {
      this.#version = piece.readUInt32LE(SEND_STREAM_HEADER_LENGTH - 4);
      this.#out(piece);
      this.#expect('command-header', SEND_COMMAND_HEADER_LENGTH);
      return;
    }
    if (this.#state === 'command-header') {
      const length = piece.readUInt32LE(0);
      const cmd = piece.readUInt16LE(4);
      if (UUID_ATTRS.has(cmd)) {
        if (length > SEND_MAX_COMMAND_LENGTH) {
          throw new SendStreamError('sendstream_too_large', `a command at byte ${this.#offset} claims ${length} bytes`, { offset: this.#offset });
        }
        this.#pending = [piece];
        this.#pendingBytes = piece.length;
        this.#state = 'command';
        this.#need = SEND_COMMAND_HEADER_LENGTH + length;
        if (length === 0) this.#complete(piece);
        return;
      }
      this.#out(piece);
      if (cmd === SendCmd.END) this.#state = 'done';
      else if (length === 0) this.#expect('command-header', SEND_COMMAND_HEADER_LENGTH);
      else {
        this.#state = 'pass';
        this.#passLeft = length;
      }
      return;
    }
    const header = piece.subarray(0, SEND_COMMAND_HEADER_LENGTH);
    const body = piece.subarray(SEND_COMMAND_HEADER_LENGTH);
    if (sendCommandCrc(header, body) !== header.readUInt32LE(SEND_COMMAND_CRC_OFFSET)) {
      throw new SendStreamError('sendstream_crc', `the command at byte ${this.#offset} has a bad CRC32C`, { offset: this.#offset });
    }
    this.#out(rewriteCommandUuids(piece, this.#version, this.#map));
    this.#expect('command-header', SEND_COMMAND_HEADER_LENGTH);
  }

  #expect(state: 'command-header', need: number): void {
    this.#state = state;
    this.#need = need;
  }

  #out(bytes: Buffer): void {
    this.#offset += bytes.length;
    this.push(bytes);
  }
}
