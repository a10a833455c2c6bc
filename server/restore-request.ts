/**
 * A restore request as the HTTP layer hands it over (route params and query strings), parsed once into validated
 * values (docs/design.md, "Conventions" 8), and whose snapshots the caller may restore.
 */
import { ValidationError } from '../core/errors.ts';
import { parseName, parseUuid, type SafeName, type Uuid } from '../core/names.ts';
import { RESTORE_QUERY } from '../core/protocol.ts';
import { DEFAULT_CHUNK_SIZE, FRAME_HEADER_SIZE, HASH_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from '../core/wire/index.ts';
import { clientNamed, type Caller } from './auth.ts';

export interface ParsedRestoreRequest {
  volume: SafeName;
  snapshot: SafeName;
  parentUuid: Uuid | null;
  chunkSize: number;
  /** Data frames the client already holds; 0 for a stream from its start. */
  fromFrame: number;
  /** The chain after `fromFrame` frames; null when fromFrame is 0. */
  chain: Buffer | null;
  /** Bytes of frame `fromFrame` the client holds: the body starts that far into it. */
  skip: number;
  /** The client's parent's ctransid now (its original, not a received copy), to hold against the one it was sent at. */
  parentCtransid?: number;
}

const HEX_CHAIN = new RegExp(`^[0-9a-f]{${HASH_SIZE * 2}}$`);

export function parseRestoreRequest(params: Record<string, string | undefined>, query: Record<string, string | undefined>): ParsedRestoreRequest {
  const volume = parseName(params.volume, 'volume');
  const snapshot = parseName(params.name, 'snapshot name');
  const parentRaw = query[RESTORE_QUERY.parent];
  const parentUuid = parentRaw === undefined || parentRaw === '' ? null : parseUuid(parentRaw, 'parent');
  const chunkRaw = query[RESTORE_QUERY.chunkSize];
  if (chunkRaw === undefined || chunkRaw === '') {
    throw new ValidationError(`${RESTORE_QUERY.chunkSize}=BYTES is required: the frames' chunk size, ${MIN_CHUNK_SIZE}..${MAX_CHUNK_SIZE} bytes (snapferry restore sends ${DEFAULT_CHUNK_SIZE})`, { details: { field: RESTORE_QUERY.chunkSize } });
  }
  const chunkSize = wholeNumber(chunkRaw, RESTORE_QUERY.chunkSize);
  if (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new ValidationError(`${RESTORE_QUERY.chunkSize} must be ${MIN_CHUNK_SIZE}..${MAX_CHUNK_SIZE} bytes, not ${chunkSize}`, { details: { chunkSize } });
  }
  const fromFrame = query[RESTORE_QUERY.fromFrame] === undefined ? 0 : wholeNumber(query[RESTORE_QUERY.fromFrame], RESTORE_QUERY.fromFrame);
  const skip = query[RESTORE_QUERY.skip] === undefined ? 0 : wholeNumber(query[RESTORE_QUERY.skip], RESTORE_QUERY.skip);
  // Less than a whole frame: a client that held a whole frame would have verified it.
  if (skip >= FRAME_HEADER_SIZE + chunkSize) {
    throw new ValidationError(`${RESTORE_QUERY.skip} must be under one frame (${FRAME_HEADER_SIZE + chunkSize} bytes), not ${skip}`, { details: { skip } });
  }
  const parentCtransid = query[RESTORE_QUERY.parentCtransid] === undefined ? null : wholeNumber(query[RESTORE_QUERY.parentCtransid], RESTORE_QUERY.parentCtransid);
  if (parentCtransid !== null && parentUuid === null) throw new ValidationError(`${RESTORE_QUERY.parentCtransid} goes with ${RESTORE_QUERY.parent} only`);
  const chainRaw = query[RESTORE_QUERY.chain]?.toLowerCase();
  if (fromFrame === 0) {
    if (chainRaw !== undefined) throw new ValidationError(`${RESTORE_QUERY.chain} goes with ${RESTORE_QUERY.fromFrame} above 0 only`);
    return { volume, snapshot, parentUuid, chunkSize, fromFrame, chain: null, skip, ...(parentCtransid === null ? {} : { parentCtransid }) };
  }
  if (chainRaw === undefined || !HEX_CHAIN.test(chainRaw)) {
    throw new ValidationError(`resuming at ${RESTORE_QUERY.fromFrame}=${fromFrame} needs ${RESTORE_QUERY.chain}: the ${HASH_SIZE * 2} hex digits of the chain hash after those frames`);
  }
  return { volume, snapshot, parentUuid, chunkSize, fromFrame, chain: Buffer.from(chainRaw, 'hex'), skip, ...(parentCtransid === null ? {} : { parentCtransid }) };
}

/**
 * Whose snapshot a restore reads. A client restores from its own namespace only: another client's snapshot is not
 * found, like anything else of theirs (server/views.ts), and a `?client=` naming another is refused (clientNamed). An admin token
 * may restore any client's, naming it with `?client=NAME`: a restore is a read that changes nothing on the server,
 * and the person holding the admin token is who restores a machine whose own token was lost with it.
 */
export function restoreOwner(caller: Caller, query: string | undefined): SafeName {
  const owner = clientNamed(caller, query);
  if (owner === undefined) {
    throw new ValidationError(`an admin token restores a client's snapshot: name the client with ?${RESTORE_QUERY.client}=NAME (snapferry restore --client NAME)`);
  }
  return owner;
}

function wholeNumber(raw: string | undefined, what: string): number {
  const n = Number(raw);
  if (raw === undefined || raw === '' || !Number.isSafeInteger(n) || n < 0) {
    throw new ValidationError(`${what} must be a whole number >= 0, not ${JSON.stringify(raw ?? null)}`, { details: { field: what } });
  }
  return n;
}
