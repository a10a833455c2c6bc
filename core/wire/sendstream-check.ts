/**
 * A pass-through check of a btrfs send stream as it flows (btrfs send stdout -> check -> framing): every chunk goes
 * out unchanged, and the pipeline fails with a SendStreamError at the first problem, or at the end when END was not
 * the last thing seen. Nothing is copied except commands that span chunks (see SendStreamParser).
 *
 * Given a policy (the receiving side's rules, see sendstream-policy.ts), every command is also checked against it
 * and a chunk goes out only once every command that ends inside it has passed; a command that spans chunks may have
 * its first bytes out before it is checked, which `btrfs receive` never acts on: it reads a whole command, CRC
 * included, before it applies it, and the failed pipeline stops it first.
 */
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { SendStreamParser } from './sendstream-parser.ts';
import type { SendStreamParserOptions, SendStreamSummary } from './sendstream-parser.ts';
import type { SendStreamHeader } from './sendstream-attributes.ts';
import { SendStreamError } from './sendstream-errors.ts';
import { SendStreamPolicyCheck } from './sendstream-policy.ts';
import type { SendStreamPolicy } from './sendstream-policy.ts';

export interface SendStreamCheckOptions extends SendStreamParserOptions {
  /** The receiver's rules; without one only the stream's framing and structure are checked. */
  policy?: SendStreamPolicy;
}

/**
 * The check itself, without a stream of its own: `take` each chunk in order, then `end`. Each throws the
 * SendStreamError of the first problem. For a reader that runs it inside its own reads (push's send reads,
 * client/push/framed-send.ts), where a stream stage of its own would hold chunks of its own.
 */
export class SendStreamChecker {
  readonly parser: SendStreamParser;
  /** Resolves with the first command's subvolume; rejects when the stream fails or closes before it. */
  readonly header: Promise<SendStreamHeader>;
  #resolveHeader!: (header: SendStreamHeader) => void;
  #rejectHeader!: (err: unknown) => void;
  #headerSettled = false;
  #summary: SendStreamSummary | undefined;
  readonly #onHeader: ((header: SendStreamHeader) => void) | undefined;

  /** `onHeader` is told once the first command has passed. */
  constructor(options: SendStreamCheckOptions & { onHeader?: (header: SendStreamHeader) => void } = {}) {
    const { policy, onHeader, ...parserOptions } = options;
    this.#onHeader = onHeader;
    if (policy !== undefined) {
      const rules = new SendStreamPolicyCheck(policy);
      const next = parserOptions.onCommand;
      parserOptions.onCommand = (command) => {
        rules.visit(command);
        next?.(command);
      };
    }
    this.parser = new SendStreamParser(parserOptions);
    this.header = new Promise<SendStreamHeader>((resolve, reject) => {
      this.#resolveHeader = resolve;
      this.#rejectHeader = reject;
    });
    // Whoever never asks for the header must not get an unhandled rejection when the stream fails.
    this.header.catch(() => undefined);
  }

  /** Set once the whole stream has passed. */
  get summary(): SendStreamSummary | undefined {
    return this.#summary;
  }

  take(chunk: Buffer): void {
    this.parser.push(chunk);
    if (!this.#headerSettled && this.parser.header !== undefined) {
      this.#headerSettled = true;
      this.#resolveHeader(this.parser.header);
      this.#onHeader?.(this.parser.header);
    }
  }

  end(): SendStreamSummary {
    this.#summary = this.parser.end();
    return this.#summary;
  }

  /** The stream stopped (with `err`, or closed early): a header not read yet never will be. */
  stopped(err: Error | null): void {
    if (this.#headerSettled) return;
    this.#headerSettled = true;
    this.#rejectHeader(
      err ??
        new SendStreamError('sendstream_truncated', `the btrfs send stream was closed at byte ${this.parser.bytes}, before its first command was read`, {
          offset: this.parser.bytes,
          commandIndex: 0,
        }),
    );
  }
}

/**
 * The check as a stream stage. Events: 'header' (SendStreamHeader) once the first command is checked; 'summary'
 * (SendStreamSummary) once the whole stream is, just before 'end'/'finish'.
 */
export class SendStreamCheck extends Transform {
  readonly #checker: SendStreamChecker;

  constructor(options: SendStreamCheckOptions = {}) {
    super();
    this.#checker = new SendStreamChecker({ ...options, onHeader: (header) => this.emit('header', header) });
  }

  get parser(): SendStreamParser {
    return this.#checker.parser;
  }

  /** Resolves with the first command's subvolume; rejects when the stream fails or closes before it. */
  get header(): Promise<SendStreamHeader> {
    return this.#checker.header;
  }

  /** Set once the whole stream has passed. */
  get summary(): SendStreamSummary | undefined {
    return this.#checker.summary;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#checker.take(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    let summary: SendStreamSummary;
    try {
      summary = this.#checker.end();
    } catch (err) {
      callback(err as Error);
      return;
    }
    this.emit('summary', summary);
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#checker.stopped(err);
    callback(err);
  }
}
