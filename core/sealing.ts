/**
 * How a stored stream's frames are sealed (client-side encryption, docs/archive.md "Client-side sealing"), and the
 * rule that a chain never mixes sealings: an incremental is sealed the way its parent is, plain on plain, sealed under
 * key K on sealed under K. A restore reads a whole chain with one config: `encrypt:` set, a plain frame is refused
 * (`not_sealed`); unset, a sealed one is (`key_required`); another key, `wrong_key`. So a chain that mixed them could
 * only come back in several runs with opposite configs, each stopping at the other's streams.
 */
import type { Snapshot } from './protocol/snapshots.ts';
import { keyRequiredError, notSealedError, wrongKeyError, type SealError } from './crypto/errors.ts';

/** The id (hex, core/crypto/keys.ts) of the key a stream's frames are sealed under; null: plain frames. */
export type Sealing = string | null;

/** What the user set: the key's id with `encrypt:`, else plain. */
export function sealingOfKey(key: { id: Buffer } | undefined): Sealing {
  return key === undefined ? null : key.id.toString('hex');
}

/**
 * A listed snapshot's sealing; undefined where the server does not say. A server that receives into btrfs holds only
 * plain streams (it refuses sealed ones, encryption_needs_archive), so a snapshot it lists is plain whatever its
 * version. Only an archive older than Snapshot.sealedBy leaves it unknown.
 */
export function sealingOfListed(s: Pick<Snapshot, 'sealedBy' | 'storedStream'>): Sealing | undefined {
  if (s.sealedBy !== undefined) return s.sealedBy;
  return s.storedStream === true ? undefined : null;
}

/**
 * Whether a stream sealed `child` may be an incremental on a stored stream sealed `parent` (undefined: not known).
 * An unknown parent takes a plain child but no sealed one: streams were plain long before sealing was, and the
 * default is plain, so an unknown stream is most likely plain; and a sealed push is a deliberate choice whose chain
 * must open with the key, which one plain stream in it would break. (This server reports every stream's sealing, so
 * unknown is only an older archive server's; its sealed chains then still take a plain incremental.)
 */
export function mayChainOn(child: Sealing, parent: Sealing | undefined): boolean {
  if (parent === undefined) return child === null;
  return child === parent;
}

/** A sealing in words, for notes and errors. */
export function describeSealing(s: Sealing | undefined): string {
  if (s === undefined) return 'sealed or not (the server does not say)';
  return s === null ? 'plain (no encrypt:)' : `sealed under key ${s}`;
}

/**
 * Why a restore configured `configured` (sealingOfKey) cannot open a stream sealed `stream`, as the receive would say
 * at the stream's frame 0, or null when it can. The rules are the receive's (core/wire/frame-parser.ts, frame-decoder.ts,
 * core/crypto/seal.ts): a sealed stream with no key is `key_required`, under another key `wrong_key`, and a plain one
 * with a key `not_sealed` (whoever stores it can write plain frames). A stream's sealing is known before a byte of it
 * is downloaded (the listing's sealedBy) or from its first bytes (frame-seal.ts sealingOfStart), and a push seals every
 * frame of a stream or none, under one key: so the receive's refusal at frame 0 can be said before the download, with
 * the same code and words, instead of after it. Used to refuse only, never to accept: the receive still opens and
 * checks every frame, so a listing that says less than the truth costs at most the download it would have cost.
 */
export function restoreRefusal(stream: Sealing, configured: Sealing): SealError | null {
  if (stream === configured) return null;
  if (configured === null) return keyRequiredError(0);
  if (stream === null) return notSealedError(0, configured);
  return wrongKeyError(0, stream, configured);
}
