/**
 * A small JSON object in the bucket (a volume's catalog, an upload's state) changed by many instances at once without
 * a lock: read it, compute the new value as a pure function of what was read, write it back only if nobody wrote it
 * in between (If-Match on the ETag read, If-None-Match: * when it was absent), and on a lost race do it all again
 * from the newer value. No write is lost, and none is made from a stale read.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { z } from 'zod';
import { SnapferryError } from '../../core/errors.ts';
import { VERSION } from '../../core/version.ts';
import type { ObjectStore } from './object-store.ts';

export interface JsonVersion<T> {
  value: T;
  etag: string;
  /** The S3 server's Date of the read or write that gave this version. */
  date: Date;
}

/** The object's value, or null when absent; a body that is not valid JSON of the schema is an error, not "absent". */
export async function readJson<T>(store: ObjectStore, key: string, schema: z.ZodType<T>): Promise<JsonVersion<T> | null> {
  const got = await store.get(key);
  return got ? { value: parseJson(key, got.body, schema), etag: got.etag, date: got.date } : null;
}

export function parseJson<T>(key: string, body: Buffer, schema: z.ZodType<T>): T {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw corrupt(key, `is not JSON (${(err as Error).message})`, err);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const newer = fieldsOfNewer(parsed.error.issues);
    if (newer !== null) throw writtenByNewer(key, newer, parsed.error);
    throw corrupt(key, `does not have the expected shape: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`, parsed.error);
  }
  return parsed.data;
}

/**
 * The fields a newer snapferry added, when they are all that is wrong: the objects' schemas are strict, so that an
 * instance never acts on an object it only half understands (an older one ignoring `retention: marked` would restore
 * from a chain being deleted). That is an upgrade to make, not damage: "corrupt ... remove the archive" would be the
 * worst advice to an admin upgrading the instances on one archive one by one.
 */
function fieldsOfNewer(issues: readonly z.core.$ZodIssue[]): string[] | null {
  if (!issues.every((i) => i.code === 'unrecognized_keys')) return null;
  return issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k].join('.')) : []));
}

function writtenByNewer(key: string, fields: readonly string[], cause: unknown): SnapferryError {
  return new SnapferryError(
    'archive_format_unsupported',
    `the archive's ${key} holds ${fields.join(', ')}, which snapferry ${VERSION} does not know: a newer snapferry wrote it (another ` +
      'instance on this archive?); upgrade this one: every instance on one archive must run the same snapferry',
    { cause, details: { key, fields } },
  );
}

function corrupt(key: string, why: string, cause: unknown): SnapferryError {
  return new SnapferryError('archive_object_corrupt', `the archive's ${key} ${why}; it was not written by this snapferry: restore it from the bucket's versions or remove the archive`, {
    cause, details: { key, why },
  });
}

export const encodeJson = (value: unknown): Buffer => Buffer.from(`${JSON.stringify(value)}\n`);

/** How many lost races an update sits out before it gives up with a retryable error. */
const MAX_ATTEMPTS = 50;

/**
 * Applies `change` to KEY's value (null when absent) until the write wins a race. `change` must be a pure function
 * of its argument: it runs again on the newer value after every lost race. It returns the same value (===) for "no
 * change", and nothing is written then. The change should also be idempotent (setting an entry, not appending one):
 * a write whose answer was lost may have been made, and the caller's retry then applies it to a value that has it.
 */
export async function updateJson<T>(
  store: ObjectStore,
  key: string,
  schema: z.ZodType<T>,
  change: (old: T | null) => T,
): Promise<JsonVersion<T>> {
  for (let attempt = 1; ; attempt++) {
    const old = await readJson(store, key, schema);
    const next = change(old?.value ?? null);
    if (old && next === old.value) return old;
    // Parse what we write, so that a change that breaks the schema fails here and not in every later reader.
    const checked = schema.safeParse(next);
    if (!checked.success) throw new Error(`updateJson ${key}: the change made a value its schema refuses: ${checked.error.message}`);
    const body = encodeJson(next);
    const written = old ? await store.swap(key, body, old.etag) : await store.putIfAbsent(key, body);
    if (written) return { value: next, ...written };
    if (attempt >= MAX_ATTEMPTS) {
      throw new SnapferryError('store_contended', `the archive's ${key} changed under ${attempt} tries in a row; try again`, {
        retryable: true, details: { key, attempts: attempt, retryAfterSeconds: 1 },
      });
    }
    // Random backoff, growing with the losses, so that racers that lost together do not read and write together again.
    await sleep(Math.random() * Math.min(200, 5 * attempt));
  }
}
