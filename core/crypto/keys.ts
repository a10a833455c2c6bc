/**
 * The keys of client-side sealing, all derived from one 32-byte secret (the key file's) by HKDF-SHA256 (RFC 5869),
 * each with its own `info` label so that no two uses share a key:
 *
 *   id       = HKDF(secret, info "snapferry key id v1", 8 bytes)      names the key in every sealed frame
 *   sealKey  = HKDF(secret, info "snapferry seal aes-256-gcm v1", 32)  the AEAD key
 *   nonceKey = HKDF(secret, info "snapferry seal nonce v1", 32)        the key of the synthetic nonce's HMAC
 *
 * The id is a one-way function of the secret, so it tells keys apart without revealing anything about them, and a
 * key file whose id does not match its secret is known to be damaged.
 */
import { hkdfSync } from 'node:crypto';

export const SECRET_SIZE = 32;
export const KEY_ID_SIZE = 8;

export interface SealKey {
  /** 8 bytes; hex in messages and key files. */
  readonly id: Buffer;
  readonly sealKey: Buffer;
  readonly nonceKey: Buffer;
}

export function deriveKeys(secret: Uint8Array): SealKey {
  if (secret.length !== SECRET_SIZE) throw new RangeError(`a seal secret is ${SECRET_SIZE} bytes, got ${secret.length}`);
  const derive = (info: string, length: number) => Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), info, length));
  return Object.freeze({
    id: derive('snapferry key id v1', KEY_ID_SIZE),
    sealKey: derive('snapferry seal aes-256-gcm v1', 32),
    nonceKey: derive('snapferry seal nonce v1', 32),
  });
}
