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
 * passes unchanged. What passes through goes out as runs of the chunk it came in: a chunk full of small commands goes
 * on as one piece, not one per command (each piece is a write into btrfs receive's pipe).
 */
export class SendStreamUuidRewriter extends Transform {
  #state: 'stream-header' | 'command-header' | 'command' | 'pass' | 'done' = 'stream-header';
  /** What is held (copies): a header cut by the end of a chunk, or a command to rewrite. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** How many bytes the held piece needs: the stream header, a command header, or a whole command. */
  #need = SEND_STREAM_HEADER_LENGTH;
  /** Body bytes of a command that names no UUID still to pass through. */
  #passLeft = 0;
  #version = 0;
  /** Stream offset of the current chunk's first byte, and of the held piece's (for errors). */
  #base = 0;
  #heldAt = 0;
  /** What one chunk gives, pushed once it is taken apart. */
  #parts: Buffer[] = [];
  readonly #map: SendUuidMap;

  constructor(map: SendUuidMap) {
    super();
    this.#map = map;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#take(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    this.#base += chunk.length;
    for (const part of this.#parts) this.push(part);
    this.#parts = [];
    callback();
  }

  override _flush(callback: TransformCallback): void {
    const between = this.#pendingBytes === 0 && (this.#state === 'done' || this.#state === 'command-header');
    if (between) return callback();
    callback(new SendStreamError('sendstream_truncated', `the send stream ends at byte ${this.#base}, inside a command`, { offset: this.#base }));
  }

  #take(chunk: Buffer): void {
    let pos = 0;
    // chunk[runStart, pos) goes out as it came.
    let runStart = 0;
    const endRun = () => {
      if (pos > runStart) this.#parts.push(chunk.subarray(runStart, pos));
      runStart = pos;
    };
    while (pos < chunk.length) {
      if (this.#state === 'done') {
        pos = chunk.length;
        break;
      }
      if (this.#state === 'pass') {
        const n = Math.min(this.#passLeft, chunk.length - pos);
        pos += n;
        this.#passLeft -= n;
        if (this.#passLeft === 0) this.#expectHeader();
        continue;
      }
      if (this.#state === 'command-header' && this.#pendingBytes === 0 && chunk.length - pos >= SEND_COMMAND_HEADER_LENGTH) {
        // The common case: a whole header in this chunk, of a command that names no UUID. It stays in the run.
        const cmd = chunk.readUInt16LE(pos + 4);
        if (!UUID_ATTRS.has(cmd)) {
          this.#passCommand(cmd, chunk.readUInt32LE(pos));
          pos += SEND_COMMAND_HEADER_LENGTH;
          continue;
        }
      }
      if (this.#pendingBytes === 0) {
        endRun();
        this.#heldAt = this.#base + pos;
      }
      const n = Math.min(this.#need - this.#pendingBytes, chunk.length - pos);
      // A copy: what is held may outlive the chunk it came in.
      this.#pending.push(Buffer.from(chunk.subarray(pos, pos + n)));
      this.#pendingBytes += n;
      pos += n;
      runStart = pos;
      if (this.#pendingBytes === this.#need) {
        const piece = Buffer.concat(this.#pending);
        this.#pending = [];
        this.#pendingBytes = 0;
        this.#complete(piece);
      }
    }
    endRun();
  }

  /** A held piece (stream header, command header, whole command) is complete. */
  #complete(piece: Buffer): void {
    if (this.#state === 'stream-header') {
      this.#version = piece.readUInt32LE(SEND_STREAM_HEADER_LENGTH - 4);
      this.#parts.push(piece);
      this.#expectHeader();
      return;
    }
    if (this.#state === 'command-header') {
      const length = piece.readUInt32LE(0);
      const cmd = piece.readUInt16LE(4);
      if (!UUID_ATTRS.has(cmd)) {
        this.#parts.push(piece);
        this.#passCommand(cmd, length);
        return;
      }
      if (length > SEND_MAX_COMMAND_LENGTH) {
        throw new SendStreamError('sendstream_too_large', `a command at byte ${this.#heldAt} claims ${length} bytes`, { offset: this.#heldAt });
      }
      this.#state = 'command';
      this.#need = SEND_COMMAND_HEADER_LENGTH + length;
      if (length > 0) {
        // Held on: the rest of the command comes after its header.
        this.#pending = [piece];
        this.#pendingBytes = piece.length;
        return;
      }
    }
    const header = piece.subarray(0, SEND_COMMAND_HEADER_LENGTH);
    const body = piece.subarray(SEND_COMMAND_HEADER_LENGTH);
    if (sendCommandCrc(header, body) !== header.readUInt32LE(SEND_COMMAND_CRC_OFFSET)) {
      throw new SendStreamError('sendstream_crc', `the command at byte ${this.#heldAt} has a bad CRC32C`, { offset: this.#heldAt });
    }
    this.#parts.push(rewriteCommandUuids(piece, this.#version, this.#map));
    this.#expectHeader();
  }

  /** After the header of a command that names no UUID: its body passes, or after END everything does. */
  #passCommand(cmd: number, length: number): void {
    if (cmd === SendCmd.END) {
      this.#state = 'done';
    } else if (length === 0) {
      this.#expectHeader();
    } else {
      this.#state = 'pass';
      this.#passLeft = length;
    }
  }

  #expectHeader(): void {
    this.#state = 'command-header';
    this.#need = SEND_COMMAND_HEADER_LENGTH;
  }
}
