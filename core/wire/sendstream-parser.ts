/**
 * An incremental, push-based reader of one btrfs send stream. It checks everything btrfs receive would check before
 * applying a command (magic, version, command length, CRC32C, command number, TLV bounds), plus what snapferry needs
 * of a stream: exactly one subvolume, first command SUBVOL or SNAPSHOT, END present and last.
 *
 * Memory stays bounded: a command that lies whole inside a pushed chunk is checked in place (no copy); one that spans
 * chunks is gathered into a reused buffer of at most `maxCommandLength` bytes. The cost per byte is the native CRC32C.
 */
import {
  isKnownSendCommand,
  SEND_COMMAND_CRC_OFFSET,
  SEND_COMMAND_HEADER_LENGTH,
  SEND_MAX_COMMAND_LENGTH,
  SEND_STREAM_HEADER_LENGTH,
  SEND_STREAM_MAGIC,
  SEND_STREAM_MAX_VERSION,
  SEND_STREAM_MIN_VERSION,
  SendCmd,
  sendCommandCrc,
  sendCommandName,
} from './sendstream-format.ts';
import { readSendSubvolume, walkSendAttributes } from './sendstream-attributes.ts';
import type { SendAttribute, SendStreamHeader } from './sendstream-attributes.ts';
import { sendStreamErrors } from './sendstream-errors.ts';
import type { CommandPlace } from './sendstream-errors.ts';
import type { SendCommand, SendStreamSummary } from './sendstream-command.ts';

export type { SendCommand, SendStreamSummary } from './sendstream-command.ts';

export interface SendStreamParserOptions {
  /** Called for every command once it has passed all checks. Attributes are collected only when this is set. */
  onCommand?: (command: SendCommand) => void;
  /**
   * Call onCommand only for these command numbers (default: every command). A caller that reads a few kinds of
   * command (the size estimate reads UPDATE_EXTENT) spares the attributes of every other one: a stream of small
   * files has about 130,000 commands a GB (issue 22). Every command is still checked.
   */
  onlyCommands?: readonly number[];
  /** Largest accepted command body; defaults to SEND_MAX_COMMAND_LENGTH (2 MiB). */
  maxCommandLength?: number;
}

/** 'closed' only after a successful end(). */
type Phase = 'stream_header' | 'commands' | 'after_end' | 'closed';

export class SendStreamParser {
  readonly #onCommand: ((command: SendCommand) => void) | undefined;
  /** Indexed by command number: whether onCommand wants it; null when it wants every command. */
  readonly #wanted: boolean[] | null;
  readonly #maxCommandLength: number;
  #phase: Phase = 'stream_header';
  #failure: unknown;
  /** Bytes of the stream consumed so far (after END: where END finished). */
  #offset = 0;
  #version = 0;
  #commands = 0;
  #header: SendStreamHeader | undefined;
  /** The stream header or a command header being gathered across chunks. */
  readonly #head = Buffer.alloc(SEND_STREAM_HEADER_LENGTH);
  #headFilled = 0;
  /** Body length of the command being gathered across chunks, once its header is complete; -1 before. */
  #bodyLength = -1;
  #bodyFilled = 0;
  #commandOffset = 0;
  #scratch: Buffer = Buffer.alloc(0);
  /** Bytes seen after END that still match the magic of a second stream. */
  #trailing = 0;

  constructor(options: SendStreamParserOptions = {}) {
    this.#onCommand = options.onCommand;
    this.#wanted = null;
    if (options.onlyCommands !== undefined) {
      this.#wanted = [];
      for (const cmd of options.onlyCommands) this.#wanted[cmd] = true;
    }
    this.#maxCommandLength = options.maxCommandLength ?? SEND_MAX_COMMAND_LENGTH;
  }

  /** Stream version, once the stream header has been read. */
  get version(): number | undefined {
    return this.#version === 0 ? undefined : this.#version;
  }

  /** The first command's subvolume, once it has been read and checked. */
  get header(): SendStreamHeader | undefined {
    return this.#header;
  }

  /** Stream bytes consumed so far; after END, where END finished. */
  get bytes(): number {
    return this.#offset;
  }

  get commandCount(): number {
    return this.#commands;
  }

  /** Whether the END command has been seen. */
  get ended(): boolean {
    return this.#phase === 'after_end' || this.#phase === 'closed';
  }

  /** Feeds the next bytes, of any size. Throws a SendStreamError at the first problem, and again on every later call. */
  push(chunk: Uint8Array): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#phase === 'closed') throw new Error('SendStreamParser.push() after end()');
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    try {
      this.#consume(buf);
    } catch (err) {
      this.#failure = err;
      throw err;
    }
  }

  /** Declares the stream complete. Throws unless END was the last thing seen. */
  end(): SendStreamSummary {
    if (this.#failure !== undefined) throw this.#failure;
    try {
      const summary = this.#finish();
      this.#phase = 'closed';
      return summary;
    } catch (err) {
      this.#failure = err;
      throw err;
    }
  }

  #consume(buf: Buffer): void {
    let pos = 0;
    while (pos < buf.length) {
      if (this.#phase === 'commands') pos = this.#consumeCommands(buf, pos);
      else if (this.#phase === 'stream_header') pos = this.#consumeStreamHeader(buf, pos);
      else return this.#consumeTrailing(buf, pos);
    }
  }

  #consumeStreamHeader(buf: Buffer, pos: number): number {
    const take = Math.min(SEND_STREAM_HEADER_LENGTH - this.#headFilled, buf.length - pos);
    buf.copy(this.#head, this.#headFilled, pos, pos + take);
    this.#headFilled += take;
    this.#offset += take;
    if (this.#headFilled < SEND_STREAM_HEADER_LENGTH) return pos + take;
    this.#headFilled = 0;
    const magic = this.#head.subarray(0, SEND_STREAM_MAGIC.length);
    if (!magic.equals(SEND_STREAM_MAGIC)) throw sendStreamErrors.badMagic(magic);
    const version = this.#head.readUInt32LE(SEND_STREAM_MAGIC.length);
    if (version < SEND_STREAM_MIN_VERSION || version > SEND_STREAM_MAX_VERSION) {
      throw sendStreamErrors.badVersion(version, SEND_STREAM_MIN_VERSION, SEND_STREAM_MAX_VERSION, SEND_STREAM_MAGIC.length);
    }
    this.#version = version;
    this.#phase = 'commands';
    return pos + take;
  }

  #consumeCommands(buf: Buffer, start: number): number {
    let pos = start;
    const end = buf.length;
    if (this.#headFilled === 0) {
      // Fast path: whole commands inside this chunk are checked in place.
      while (end - pos >= SEND_COMMAND_HEADER_LENGTH) {
        const length = this.#checkLength(buf, pos, this.#offset);
        const stop = pos + SEND_COMMAND_HEADER_LENGTH + length;
        if (stop > end) break;
        this.#command(buf, pos, buf.subarray(pos + SEND_COMMAND_HEADER_LENGTH, stop), this.#offset);
        this.#offset += stop - pos;
        pos = stop;
        if (this.#phase !== 'commands') return pos;
      }
      if (pos === end) return pos;
      this.#commandOffset = this.#offset;
    }
    if (this.#bodyLength < 0) {
      const take = Math.min(SEND_COMMAND_HEADER_LENGTH - this.#headFilled, end - pos);
      buf.copy(this.#head, this.#headFilled, pos, pos + take);
      this.#headFilled += take;
      this.#offset += take;
      pos += take;
      if (this.#headFilled < SEND_COMMAND_HEADER_LENGTH) return pos;
      this.#bodyLength = this.#checkLength(this.#head, 0, this.#commandOffset);
      this.#bodyFilled = 0;
      if (this.#scratch.length < this.#bodyLength) this.#scratch = Buffer.allocUnsafe(this.#bodyLength);
    }
    const take = Math.min(this.#bodyLength - this.#bodyFilled, end - pos);
    buf.copy(this.#scratch, this.#bodyFilled, pos, pos + take);
    this.#bodyFilled += take;
    this.#offset += take;
    pos += take;
    if (this.#bodyFilled === this.#bodyLength) {
      this.#command(this.#head, 0, this.#scratch.subarray(0, this.#bodyLength), this.#commandOffset);
      this.#headFilled = 0;
      this.#bodyLength = -1;
    }
    return pos;
  }

  /** Reads the length of the command header at `at` and rejects it before any body is gathered, so memory stays bounded. */
  #checkLength(src: Buffer, at: number, offset: number): number {
    const length = src.readUInt32LE(at);
    if (length <= this.#maxCommandLength) return length;
    if (src.subarray(at, at + SEND_COMMAND_HEADER_LENGTH).equals(SEND_STREAM_MAGIC.subarray(0, SEND_COMMAND_HEADER_LENGTH))) {
      throw sendStreamErrors.secondStreamBeforeEnd(offset, this.#commands);
    }
    throw sendStreamErrors.tooLarge(offset, this.#commands, length, this.#maxCommandLength);
  }

  /**
   * Checks the command whose header is at `at` in `src` (a chunk, or the gathering buffer) and whose body is `body`.
   * Every command of a stream passes here (about 150,000 a GB, most of them small): nothing is allocated for one that
   * passes unless the caller asked for attributes (issue 22, docs/performance.md).
   */
  #command(src: Buffer, at: number, body: Buffer, offset: number): void {
    const index = this.#commands;
    const cmd = src.readUInt16LE(at + 4);
    const expected = src.readUInt32LE(at + SEND_COMMAND_CRC_OFFSET);
    const actual = sendCommandCrc(src, body, at);
    if (expected !== actual) throw sendStreamErrors.crc(this.#place(cmd, offset, index), expected, actual);
    if (!isKnownSendCommand(cmd, this.#version)) throw sendStreamErrors.badCommand(this.#place(cmd, offset, index), this.#version);
    const visit = this.#onCommand !== undefined && (this.#wanted === null || this.#wanted[cmd] === true);
    const attributes: SendAttribute[] | undefined = index === 0 || visit ? [] : undefined;
    const problem = walkSendAttributes(body, this.#version, attributes);
    if (problem !== undefined) {
      const attributeOffset = offset + SEND_COMMAND_HEADER_LENGTH + problem.at;
      throw sendStreamErrors.badAttribute(this.#place(cmd, offset, index), problem.reason, attributeOffset, problem.type);
    }
    if (index === 0) {
      const subvolume = readSendSubvolume(cmd, attributes ?? []);
      if (typeof subvolume === 'string') throw sendStreamErrors.badFirstCommand(this.#place(cmd, offset, index), subvolume);
      this.#header = { ...subvolume, version: this.#version };
    } else if (cmd === SendCmd.SUBVOL || cmd === SendCmd.SNAPSHOT) {
      throw sendStreamErrors.secondSubvolume(this.#place(cmd, offset, index));
    }
    this.#commands = index + 1;
    if (cmd === SendCmd.END) this.#phase = 'after_end';
    if (visit) this.#onCommand?.({ index, cmd, name: sendCommandName(cmd), offset, length: body.length, attributes: attributes ?? [] });
  }

  #place(cmd: number, offset: number, commandIndex: number): CommandPlace {
    return { offset, commandIndex, command: cmd, commandName: sendCommandName(cmd) };
  }

  /** After END only a restart's second stream could follow; it is named as such once its magic is complete. */
  #consumeTrailing(buf: Buffer, pos: number): void {
    for (let i = pos; i < buf.length; i++) {
      if (buf[i] !== SEND_STREAM_MAGIC[this.#trailing]) throw sendStreamErrors.trailingData(this.#offset, this.#commands);
      this.#trailing++;
      if (this.#trailing === SEND_STREAM_MAGIC.length) throw sendStreamErrors.secondStream(this.#offset, this.#commands);
    }
  }

  #finish(): SendStreamSummary {
    if (this.#phase === 'after_end' && this.#header !== undefined) {
      if (this.#trailing > 0) throw sendStreamErrors.trailingData(this.#offset, this.#commands);
      return { version: this.#version, header: this.#header, commands: this.#commands, bytes: this.#offset };
    }
    let where: string;
    if (this.#phase === 'stream_header') where = 'inside the stream header';
    else if (this.#headFilled > 0 && this.#bodyLength >= 0) {
      where = `inside command #${this.#commands} (${sendCommandName(this.#head.readUInt16LE(4))}, ${this.#bodyLength - this.#bodyFilled} of its bytes missing)`;
    } else if (this.#headFilled > 0) where = `inside the header of command #${this.#commands}`;
    else if (this.#commands === 0) where = 'after the stream header, before the first command';
    else where = `after command #${this.#commands - 1}, before the END command`;
    throw sendStreamErrors.truncated(this.#offset, this.#commands, where);
  }
}
