/**
 * The archive's view of its S3 bucket: whole small objects written with a condition (create-if-absent, compare-and-
 * swap), reads whole or by range, listing and deletion, under one key prefix. Everything above it (lease, catalog,
 * segments) is built on these six calls, which are exactly what docs/archive.md found RGW 16 to honour; nothing
 * here relies on a condition RGW ignores (DELETE, multipart).
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { SnapferryError, StoreUnavailable } from '../../core/errors.ts';
import { s3Status, storeError, type StoreWhere } from './s3-errors.ts';

export interface StoredObject { body: Buffer; etag: string /* unquoted */; date: Date /* S3 server's Date */ }
export interface WriteResult { etag: string /* unquoted */; date: Date }
export interface ObjectStore {
  /** Creates KEY only if absent (If-None-Match: *). null when it exists (412). */
  putIfAbsent(key: string, body: Buffer): Promise<WriteResult | null>;
  /** Replaces KEY only if its ETag is still `etag` (If-Match, unquoted for RGW). null when it changed or is gone. */
  swap(key: string, body: Buffer, etag: string): Promise<WriteResult | null>;
  /** KEY whole, or null when absent. */
  get(key: string): Promise<StoredObject | null>;
  /** Bytes [start, end) of KEY. */
  getRange(key: string, start: number, end: number): Promise<Buffer>;
  /** Every key under `prefix`, with size and last-modified, paging through ListObjectsV2. */
  list(prefix: string): AsyncIterable<{ key: string; size: number; lastModified: Date }>;
  /** Deletes KEY (unconditional; RGW ignores conditions on DELETE). No error when absent. */
  delete(key: string): Promise<void>;
}

/** How long a connection may take to open, and a request may sit without a byte moving, before the store is down. */
const CONNECT_TIMEOUT_MS = 5_000;
const IDLE_TIMEOUT_MS = 30_000;

export function s3ObjectStore(opts: { endpoint: string; bucket: string; prefix: string; region?: string;
  accessKeyId: string; secretAccessKey: string; forcePathStyle?: boolean }): ObjectStore {
  const where: StoreWhere = { endpoint: opts.endpoint, bucket: opts.bucket };
  const base: S3ClientConfig = {
    endpoint: opts.endpoint,
    region: opts.region ?? 'us-east-1',
    forcePathStyle: opts.forcePathStyle ?? true,
    credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey },
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: IDLE_TIMEOUT_MS },
  };
  // The SDK's first client warns on stderr that its releases after January 2027 need Node 22: a note for whoever
  // updates the lock file (docs/archive.md), not for someone running serve, whose log it would clutter.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // Reads, lists and deletes may be retried by the SDK (3 tries, backoff): doing them twice changes nothing.
  const client = withServerDate(new S3Client(base));
  // A conditional PUT must not be: if its answer is lost and the SDK sends it again, the second one meets the first's
  // own write and gets 412, and a write that was made would be reported as lost (a lease taken, then "held by
  // someone else"; a catalog change applied, then applied again). A PUT in doubt is settled by reading instead.
  const once = withServerDate(new S3Client({ ...base, maxAttempts: 1 }));
  const root = opts.prefix.replace(/^\/+|\/+$/g, '');
  const full = (key: string): string => {
    checkKey(key);
    return root === '' ? key : `${root}/${key}`;
  };
  const fail = (err: unknown, op: string, key: string): SnapferryError => storeError(err, op, full(key), where);

  async function conditionalPut(key: string, body: Buffer, condition: { IfNoneMatch: '*' } | { IfMatch: string }, op: string): Promise<WriteResult | null> {
    try {
      const output = await once.send(new PutObjectCommand({ Bucket: opts.bucket, Key: full(key), Body: body, ...condition }));
      return { etag: unquote(output.ETag, op, key), date: serverDate(output) };
    } catch (err) {
      // 412: the condition failed. 409 is AWS's "a conflicting conditional write is in progress": it lost as well.
      const status = s3Status(err);
      if (status === 412 || status === 409) return null;
      if (status !== undefined && status < 500) throw fail(err, op, key);
      return settle(key, body, 'IfMatch' in condition ? condition.IfMatch : null, err, op);
    }
  }

  /**
   * The outcome of a conditional PUT that got a 5xx or no answer, read from the object itself. RGW 16 answers some
   * losers of a race of conditional PUTs 500 (its atomic write cancelled, ECANCELED) rather than 412, and an answer
   * lost on the way leaves the same doubt. Our bytes there: our write was made (or an identical one, which is the
   * same thing to a reader of the content). Another version there: someone else's write came first, the condition
   * failed. The version we swapped from still there (or, for a create, nothing): nothing happened, and the store is
   * failing: store_unavailable. A read that fails too is the store being down.
   */
  async function settle(key: string, body: Buffer, from: string | null, cause: unknown, op: string): Promise<WriteResult | null> {
    const now = await store.get(key);
    if (now?.body.equals(body)) return { etag: now.etag, date: now.date };
    if (now === null ? from === null : now.etag === from) throw fail(cause, op, key);
    return null;
  }

  const store: ObjectStore = {
    putIfAbsent: (key, body) => conditionalPut(key, body, { IfNoneMatch: '*' }, 'putIfAbsent'),
    // RGW 16 compares If-Match byte for byte with its unquoted ETag (test/archive/s3-semantics.test.ts).
    swap: (key, body, etag) => conditionalPut(key, body, { IfMatch: etag.replace(/^"|"$/g, '') }, 'swap'),

    async get(key) {
      try {
        const output = await client.send(new GetObjectCommand({ Bucket: opts.bucket, Key: full(key) }));
        const body = Buffer.from(await output.Body!.transformToByteArray());
        return { body, etag: unquote(output.ETag, 'get', key), date: serverDate(output) };
      } catch (err) {
        if (s3Status(err) === 404 && s3Name(err) !== 'NoSuchBucket') return null;
        throw fail(err, 'get', key);
      }
    },

    async getRange(key, start, end) {
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
        throw new RangeError(`getRange ${key}: [${start}, ${end}) is not a range of bytes`);
      }
      // An HTTP range cannot be empty (RFC 9110 14.1.1: last-pos >= first-pos).
      if (start === end) return Buffer.alloc(0);
      let body: Buffer;
      try {
        const output = await client.send(new GetObjectCommand({ Bucket: opts.bucket, Key: full(key), Range: `bytes=${start}-${end - 1}` }));
        body = Buffer.from(await output.Body!.transformToByteArray());
      } catch (err) {
        if (s3Status(err) === 404 && s3Name(err) !== 'NoSuchBucket') throw missing(key, err);
        if (s3Status(err) === 416) throw short(key, start, end, 0, err);
        throw fail(err, 'getRange', key);
      }
      // A range past the end is answered short (or 416 when it starts past it): bytes the object does not have.
      if (body.length !== end - start) throw short(key, start, end, body.length);
      return body;
    },

    async *list(prefix) {
      const from = root === '' ? prefix : `${root}/${prefix}`;
      let ContinuationToken: string | undefined;
      do {
        let page;
        try {
          page = await client.send(new ListObjectsV2Command({ Bucket: opts.bucket, Prefix: from, ContinuationToken }));
        } catch (err) {
          throw storeError(err, 'list', from, where);
        }
        for (const o of page.Contents ?? []) {
          if (o.Key === undefined) continue;
          yield { key: root === '' ? o.Key : o.Key.slice(root.length + 1), size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) };
        }
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
    },

    async delete(key) {
      try {
        await client.send(new DeleteObjectCommand({ Bucket: opts.bucket, Key: full(key) }));
      } catch (err) {
        if (s3Status(err) === 404 && s3Name(err) !== 'NoSuchBucket') return;
        throw fail(err, 'delete', key);
      }
    },
  };
  return store;

  function short(key: string, start: number, end: number, got: number, cause?: unknown): SnapferryError {
    return new SnapferryError('store_object_short', `${full(key)} has no bytes [${start}, ${end}): got ${got} of ${end - start}`, {
      cause, details: { key: full(key), start, end, got },
    });
  }

  function missing(key: string, cause: unknown): SnapferryError {
    return new SnapferryError('store_object_missing', `${full(key)} is not in bucket ${opts.bucket}`, { cause, details: { key: full(key) } });
  }
}

/** Keys are built from validated names; one that could escape the prefix or name a folder is a bug, said loudly. */
function checkKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.endsWith('/') || key.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`object key ${JSON.stringify(key)} is not a relative path of named parts`);
  }
}

function s3Name(err: unknown): string {
  return String((err as { name?: unknown } | null)?.name ?? '');
}

function unquote(etag: string | undefined, op: string, key: string): string {
  if (!etag) throw new StoreUnavailable(`the S3 store answered ${op} ${key} without an ETag`);
  return etag.replace(/^"|"$/g, '');
}

/**
 * The S3 server's `Date` of each answer. Leases are timed by the server's clock, so that instances need not agree on
 * theirs; the SDK keeps no response header outside the operation's own fields, so a middleware hands it over.
 */
const DATE = Symbol('serverDate');
type Dated = { [DATE]?: Date };

function withServerDate(client: S3Client): S3Client {
  client.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const date = (result.response as { headers?: Record<string, string> }).headers?.date;
      if (date !== undefined && result.output && typeof result.output === 'object') (result.output as Dated)[DATE] = new Date(date);
      return result;
    },
    { step: 'deserialize', name: 'snapferryServerDate', priority: 'high' },
  );
  return client;
}

function serverDate(output: object): Date {
  const date = (output as Dated)[DATE];
  if (!date || Number.isNaN(date.getTime())) throw new StoreUnavailable("the S3 store's answer had no valid Date header; leases need the server's clock");
  return date;
}
