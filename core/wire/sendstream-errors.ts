/**
 * What can be wrong with a btrfs send stream, as typed errors. Every error carries the byte offset where the reader
 * noticed it and, where one is involved, the 0-based command index and number.
 *
 * `retryable` is true only where running `btrfs send` again can heal it: a stream cut short or followed by more
 * bytes comes from a `btrfs send` that was stopped or restarted (btrfs-progs issues 719 and 1063). A bad CRC or a
 * broken structure in a stream that was complete comes from a bug or from memory or disk corruption, and the same
 * send would most likely give the same bytes again.
 */
import { SnapferryError } from '../errors.ts';

export type SendStreamErrorCode =
  | 'sendstream_bad_magic'
  | 'sendstream_bad_version'
  | 'sendstream_crc'
  | 'sendstream_bad_command'
  | 'sendstream_bad_attribute'
  | 'sendstream_too_large'
  | 'sendstream_truncated'
  | 'sendstream_trailing_data'
  | 'sendstream_second_stream'
  | 'sendstream_second_subvolume'
  | 'sendstream_bad_first_command';

const RETRYABLE: ReadonlySet<SendStreamErrorCode> = new Set<SendStreamErrorCode>([
  'sendstream_truncated',
  'sendstream_trailing_data',
  'sendstream_second_stream',
]);

export interface SendStreamErrorDetails {
  /** Byte offset in the stream where the problem starts (a command header, an attribute, the first extra byte). */
  offset: number;
  /** 0-based index of the command involved, when one is. */
  commandIndex?: number;
  /** Command number and name, when one is involved. */
  command?: number;
  commandName?: string;
  [key: string]: unknown;
}

export class SendStreamError extends SnapferryError {
  declare readonly code: SendStreamErrorCode;
  declare readonly details: SendStreamErrorDetails;

  constructor(code: SendStreamErrorCode, message: string, details: SendStreamErrorDetails) {
    super(code, message, { retryable: RETRYABLE.has(code), details });
  }
}

export function isSendStreamError(err: unknown): err is SendStreamError {
  return err instanceof SendStreamError;
}

/*
 * The errors the parser raises, with their messages in one place. Each says what happened and what a person can do.
 */

const RERUN = 'run the push again';

/** Where a command-level problem is: its offset, index and number. (A type alias: it must fit the details' index.) */
export type CommandPlace = {
  offset: number;
  commandIndex: number;
  command: number;
  commandName: string;
};

export const sendStreamErrors = {
  badMagic(found: Buffer): SendStreamError {
    return new SendStreamError(
      'sendstream_bad_magic',
      `the data does not start with the btrfs send stream magic "btrfs-stream" (found ${JSON.stringify(found.toString('latin1'))}): it is not a btrfs send stream`,
      { offset: 0, found: found.toString('hex') },
    );
  },

  badVersion(version: number, min: number, max: number, offset: number): SendStreamError {
    return new SendStreamError(
      'sendstream_bad_version',
      `the btrfs send stream has version ${version}; snapferry reads versions ${min} to ${max}: use \`btrfs send --proto\` with a supported version`,
      { offset, version },
    );
  },

  tooLarge(offset: number, commandIndex: number, length: number, maxLength: number): SendStreamError {
    return new SendStreamError(
      'sendstream_too_large',
      `command #${commandIndex} at byte ${offset} of the btrfs send stream claims ${length} bytes, more than the ${maxLength} a send stream command can have: the stream is corrupt`,
      { offset, commandIndex, length, maxLength },
    );
  },

  crc(place: CommandPlace, expected: number, actual: number): SendStreamError {
    return new SendStreamError(
      'sendstream_crc',
      `command #${place.commandIndex} (${place.commandName}) at byte ${place.offset} of the btrfs send stream fails its CRC32C check: the stream was corrupted after btrfs send wrote it`,
      { ...place, expected, actual },
    );
  },

  badCommand(place: CommandPlace, version: number): SendStreamError {
    return new SendStreamError(
      'sendstream_bad_command',
      `command #${place.commandIndex} at byte ${place.offset} of the btrfs send stream has number ${place.command}, which a version ${version} stream cannot carry: the stream is corrupt or newer than snapferry`,
      place,
    );
  },

  badAttribute(place: CommandPlace, reason: string, attributeOffset: number, attributeType?: number): SendStreamError {
    return new SendStreamError(
      'sendstream_bad_attribute',
      `command #${place.commandIndex} (${place.commandName}) at byte ${place.offset} of the btrfs send stream is malformed: ${reason}`,
      { ...place, attributeOffset, attributeType },
    );
  },

  badFirstCommand(place: CommandPlace, reason: string): SendStreamError {
    return new SendStreamError(
      'sendstream_bad_first_command',
      `the btrfs send stream's first command (${place.commandName}) must create the subvolume, but ${reason}: the stream is not a whole send of one snapshot`,
      place,
    );
  },

  secondSubvolume(place: CommandPlace): SendStreamError {
    return new SendStreamError(
      'sendstream_second_subvolume',
      `the btrfs send stream starts a second subvolume at byte ${place.offset} (command #${place.commandIndex}, ${place.commandName}): snapferry sends exactly one snapshot per stream`,
      place,
    );
  },

  /** A new stream header where a command was due: the first stream never reached END. */
  secondStreamBeforeEnd(offset: number, commandIndex: number): SendStreamError {
    return new SendStreamError(
      'sendstream_second_stream',
      `a second send stream starts at byte ${offset}, before the first one ended: btrfs send restarted or was given several subvolumes; ${RERUN}`,
      { offset, commandIndex },
    );
  },

  secondStream(offset: number, commandIndex: number): SendStreamError {
    return new SendStreamError(
      'sendstream_second_stream',
      `a second send stream follows the first at byte ${offset}: btrfs send restarted after a signal or was given several subvolumes (btrfs-progs issues 719, 1063); ${RERUN}`,
      { offset, commandIndex },
    );
  },

  trailingData(offset: number, commandIndex: number): SendStreamError {
    return new SendStreamError(
      'sendstream_trailing_data',
      `bytes follow the END command of the btrfs send stream at byte ${offset}: btrfs send wrote more than one stream; ${RERUN}`,
      { offset, commandIndex },
    );
  },

  /** `where` completes "truncated at byte N, ..."; offset 0 means nothing came at all. */
  truncated(offset: number, commandIndex: number, where: string): SendStreamError {
    const message =
      offset === 0
        ? `the btrfs send stream is empty: btrfs send wrote nothing; ${RERUN}`
        : `the btrfs send stream is truncated at byte ${offset}, ${where}: btrfs send stopped early; ${RERUN}`;
    return new SendStreamError('sendstream_truncated', message, { offset, commandIndex });
  },
};
