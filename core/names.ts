/**
 * Names that end up as path components on the server (client, volume, snapshot) and UUIDs that btrfs prints.
 * They are parsed here, once, at every boundary (CLI, HTTP, tus metadata, send stream): nothing unvalidated reaches
 * the filesystem. A name is one path component of a conservative alphabet, so it can never climb out of its folder,
 * hide as a dot-file next to our own staging folders, or smuggle control characters into logs.
 */
import { ValidationError } from './errors.ts';

declare const brand: unique symbol;
export type SafeName = string & { readonly [brand]: 'SafeName' };
export type Uuid = string & { readonly [brand]: 'Uuid' };

/** btrfs limits a name to 255 bytes; this alphabet is ASCII, so characters equal bytes. */
export const MAX_NAME_LENGTH = 255;
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._@:+-]*$/;
/** NAME_RE in words, for messages: "letters" alone reads as any script's, and é or ü is refused. */
export const NAME_RULE = 'ASCII letters, digits and . _ @ : + - (not first), no slashes or spaces';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A name as a message shows it: quoted (a space or a control character stays visible), cut at 40 characters. */
export function preview(value: string): string {
  const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return JSON.stringify(shown);
}

/** `what` names the field for the message ("volume", "snapshot name", "client"). */
export function parseName(value: unknown, what: string): SafeName {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ValidationError(`${what} is missing: give a name of ${NAME_RULE}`, {
      details: { field: what },
    });
  }
  if (value.length > MAX_NAME_LENGTH) {
    throw new ValidationError(`${what} is ${value.length} characters long; the limit is ${MAX_NAME_LENGTH}`, {
      details: { field: what, length: value.length },
    });
  }
  if (!NAME_RE.test(value)) {
    throw new ValidationError(
      `${what} ${preview(value)} is not allowed: use ${NAME_RULE}`,
      { details: { field: what } },
    );
  }
  return value as SafeName;
}

export function isSafeName(value: unknown): value is SafeName {
  return typeof value === 'string' && value.length <= MAX_NAME_LENGTH && NAME_RE.test(value);
}

export function parseUuid(value: unknown, what: string): Uuid {
  const lower = typeof value === 'string' ? value.toLowerCase() : value;
  if (typeof lower !== 'string' || !UUID_RE.test(lower)) {
    throw new ValidationError(`${what} must be a UUID like 01234567-89ab-cdef-0123-456789abcdef`, {
      details: { field: what },
    });
  }
  return lower as Uuid;
}

export function isUuid(value: unknown): value is Uuid {
  return typeof value === 'string' && UUID_RE.test(value);
}
