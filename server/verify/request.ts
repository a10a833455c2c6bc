/**
 * Verify requests as the HTTP layer hands them over, parsed once (STYLE.md 8): whose snapshot or job the caller may
 * touch, and batch bodies held to VERIFY_LIMITS before anything looks at them. Bad input is a 400 invalid_input.
 */
import type { z } from 'zod';
import { ValidationError } from '../../core/errors.ts';
import { parseName, type SafeName } from '../../core/names.ts';
import { ChildrenRequest, RecordsRequest, VERIFY_LIMITS, VERIFY_QUERY, VerifyStart } from '../../core/protocol.ts';
import { clientNamed, type Caller } from '../auth.ts';
import type { StartRequest } from './jobs.ts';

/**
 * Whose snapshot a verify reads. A client verifies its own only: `?client=` does not change that, and another
 * client's snapshot is not found. An admin token names the client, as for a restore (which ends with a verify).
 */
export function verifyOwner(caller: Caller, query: string | undefined): SafeName {
  const owner = clientNamed(caller, query);
  if (owner === undefined) {
    throw new ValidationError(`an admin token verifies a client's snapshot: name the client with ?${VERIFY_QUERY.client}=NAME (snapferry verify --client NAME)`);
  }
  return owner;
}

export function parseStart(caller: Caller, query: string | undefined, body: unknown): StartRequest {
  const start = parseBody(VerifyStart, body, '{"volume": "home", "snapshot": "home.20261125T013000Z", "readData": false}');
  return { by: caller, client: verifyOwner(caller, query), volume: parseName(start.volume, 'volume'), snapshot: parseName(start.snapshot, 'snapshot name'), readData: start.readData };
}

export function parseChildren(body: unknown): ChildrenRequest {
  return parseBody(ChildrenRequest, body, `{"dirs": [{"path": ""}, {"path": "etc", "after": "hosts"}]} with at most ${VERIFY_LIMITS.maxPathsPerRequest} dirs`);
}

export function parseRecords(body: unknown): RecordsRequest {
  return parseBody(RecordsRequest, body, `{"paths": ["etc/hosts"]} with at most ${VERIFY_LIMITS.maxPathsPerRequest} paths`);
}

function parseBody<T extends z.ZodType>(schema: T, body: unknown, example: string): z.output<T> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  throw new ValidationError(`the body must be JSON like ${example}: ${issue?.message ?? 'not valid'}${where}`, {
    details: { limits: VERIFY_LIMITS },
  });
}

/** The request's JSON body, refused unread beyond maxBodyBytes (a declared length) or once past it. */
export async function readJsonBody(req: Request): Promise<unknown> {
  const declared = Number(req.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > VERIFY_LIMITS.maxBodyBytes) throw tooLarge(declared);
  if (!req.body) return null;
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > VERIFY_LIMITS.maxBodyBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(size);
    }
    chunks.push(value);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ValidationError('the body is not JSON');
  }
}

function tooLarge(size: number): ValidationError {
  return new ValidationError(`the body is over ${VERIFY_LIMITS.maxBodyBytes} bytes (${size}): ask for fewer paths at a time`, {
    details: { maxBodyBytes: VERIFY_LIMITS.maxBodyBytes },
  });
}
