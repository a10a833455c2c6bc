/**
 * Errors of client-side sealing. A restore must tell "this is not your key" (the user holds another key file: find
 * the right one) from "these bytes were damaged" (fetch the frame again, or the archive is corrupt), so the two have
 * codes of their own; and a key file that cannot be read says what is wrong with it, never what is in it.
 */
import { SnapferryError } from '../errors.ts';

export type SealErrorCode =
  /** The frame was sealed under another key (its key id is not the key file's): no retry helps, another key does. */
  | 'wrong_key'
  /**
   * The sealed frame's header fails its CRC, names an unknown seal version, is too short, or its tag does not verify
   * under the right key: the bytes changed after sealing, or the frame was moved to another position or stream.
   */
  | 'frame_corrupt'
  /** A sealed stream came to be opened and no key is configured: set `encrypt:` to the key file it was sealed with. */
  | 'key_required'
  /**
   * A key is configured and the frame is not sealed: whoever holds the archive can write plain frames (only sealing
   * needs the key), so taking them would let it swap in content of its choosing. Restore it without `encrypt:`.
   */
  | 'not_sealed';

export interface SealErrorDetails extends Record<string, unknown> {
  /** The frame's index (its position in its stream). */
  frameIndex: number;
  /** The key id the frame names (hex), when its header could be read. */
  frameKeyId?: string;
  /** The key id of the key in use (hex). */
  keyId?: string;
}

export class SealError extends SnapferryError {
  declare readonly code: SealErrorCode;
  declare readonly details: SealErrorDetails;

  /**
   * Neither is retryable with the same key and the same bytes; a corrupt frame fetched again from a good copy may
   * open, which is for the caller (a restore re-fetching the frame) to decide, not for a blind retry loop.
   */
  constructor(code: SealErrorCode, message: string, details: SealErrorDetails, cause?: unknown) {
    super(code, message, { retryable: false, details, cause });
  }
}

/*
 * The three refusals of a stream sealed otherwise than the restore's config, each worded once: the receive raises them
 * on the frame it opens, and a restore raises them earlier, from the listing's sealedBy or from frame 0's seal header
 * as it arrives (core/sealing.ts restoreRefusal), so that a script sees the same code and message whenever it comes.
 */

/** Frame `frameIndex` names key `frameKeyId` (hex), the key file holds `keyId`. */
export function wrongKeyError(frameIndex: number, frameKeyId: string, keyId: string): SealError {
  return new SealError(
    'wrong_key',
    `sealed frame ${frameIndex} was sealed with key ${frameKeyId}, but the key file holds key ${keyId}: use the key file this archive was written with`,
    { frameIndex, frameKeyId, keyId },
  );
}

/** Frame `frameIndex` is sealed and no key is configured. */
export function keyRequiredError(frameIndex: number): SealError {
  return new SealError(
    'key_required',
    `frame ${frameIndex} is sealed (client-side encryption) and no key is configured: set encrypt: in the client config to the key file it was sealed with`,
    { frameIndex },
  );
}

/** Frame `frameIndex` is plain and key `keyId` (hex) is configured. */
export function notSealedError(frameIndex: number, keyId: string): SealError {
  return new SealError(
    'not_sealed',
    `frame ${frameIndex} is not sealed, and encrypt: is set: a stream sealed under your key cannot hold it (another stream, or one ` +
      'forged by whoever stores it); to restore a snapshot pushed without encryption, run the restore without encrypt:',
    { frameIndex, keyId },
  );
}

export type KeyFileErrorCode =
  /** The key file is not a snapferry key file, of an unknown version, damaged, or readable by others. */
  | 'key_file_invalid'
  /** `key generate` was pointed at a file that exists: it never replaces a key (data sealed under it would be lost). */
  | 'key_file_exists'
  /** The key file is not there or cannot be read. */
  | 'key_file_unreadable';

export class KeyFileError extends SnapferryError {
  declare readonly code: KeyFileErrorCode;

  constructor(code: KeyFileErrorCode, message: string, options: { path: string; cause?: unknown }) {
    super(code, message, { retryable: false, details: { path: options.path }, cause: options.cause });
  }
}
