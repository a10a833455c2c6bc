// What the archive's design (docs/archive.md) relies on from its S3 server, measured on the real one CI runs (Ceph RGW
// 16, test/fixtures/s3.ts). The catalog and the lease are built on conditional PUTs; these tests are what tells us
// which conditions RGW 16 honours, which it ignores, and its one quirk, so that a change of server (or of RGW
// version) that breaks an assumption fails here and not as a lost catalog entry.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { rootOnly } from '../fixtures/btrfs.ts';
import { sharedOrOwnS3, type S3Server } from '../fixtures/s3.ts';

const MiB = 1024 * 1024;
let server: S3Server | undefined;
let s3: S3Client;
before(async () => {
  if (rootOnly.skip !== false) return;
  server = await sharedOrOwnS3();
  s3 = server.client();
});
after(async () => {
  s3?.destroy();
  await server?.close();
});

let buckets = 0;
async function bucket(): Promise<string> {
  const Bucket = `semantics-${process.pid}-${++buckets}`;
  await s3.send(new CreateBucketCommand({ Bucket }));
  return Bucket;
}

async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1;
  }
}

const text = async (Bucket: string, Key: string) => (await s3.send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToString();
const unquoted = (etag: string) => etag.replace(/^"|"$/g, '');

test('PUT with If-None-Match: * creates a key only where none is, and of 20 racing creates exactly one wins', rootOnly, async () => {
  const Bucket = await bucket();
  assert.equal(await statusOf(s3.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'first', IfNoneMatch: '*' }))), 200);
  assert.equal(await statusOf(s3.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'second', IfNoneMatch: '*' }))), 412);
  assert.equal(await text(Bucket, 'k'), 'first');
  const racers = await Promise.all(
    Array.from({ length: 20 }, (_, i) => statusOf(s3.send(new PutObjectCommand({ Bucket, Key: 'race', Body: `w${i}`, IfNoneMatch: '*' })))),
  );
  assert.equal(racers.filter((s) => s === 200).length, 1, `statuses: ${racers.join(' ')}`);
  assert.ok(racers.every((s) => s === 200 || s === 412));
  assert.equal(await text(Bucket, 'race'), `w${racers.indexOf(200)}`);
});

test('PUT with If-Match replaces only the version read (compare-and-swap): 20 racing swaps from one ETag, one wins', rootOnly, async () => {
  const Bucket = await bucket();
  const { ETag } = await s3.send(new PutObjectCommand({ Bucket, Key: 'cas', Body: 'v0' }));
  const racers = await Promise.all(
    Array.from({ length: 20 }, (_, i) => statusOf(s3.send(new PutObjectCommand({ Bucket, Key: 'cas', Body: `v${i + 1}`, IfMatch: unquoted(ETag!) })))),
  );
  assert.equal(racers.filter((s) => s === 200).length, 1, `statuses: ${racers.join(' ')}`);
  assert.equal(await text(Bucket, 'cas'), `v${racers.indexOf(200) + 1}`);
  // The ETag read before the swap is stale now.
  assert.equal(await statusOf(s3.send(new PutObjectCommand({ Bucket, Key: 'cas', Body: 'late', IfMatch: unquoted(ETag!) }))), 412);
  // If-Match on a key that is not there fails too: a swap never creates.
  assert.equal(await statusOf(s3.send(new PutObjectCommand({ Bucket, Key: 'absent', Body: 'x', IfMatch: unquoted(ETag!) }))), 412);
});

test('RGW 16 quirk: If-Match with the ETag as S3 returns it (quoted, as RFC 9110 writes it) never matches', rootOnly, async () => {
  const Bucket = await bucket();
  const { ETag } = await s3.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v0' }));
  assert.match(ETag!, /^"[0-9a-f]{32}"$/);
  assert.equal(await statusOf(s3.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v1', IfMatch: ETag! }))), 412);
  assert.equal(await text(Bucket, 'k'), 'v0');
});

test('RGW 16 ignores If-Match on DELETE and If-None-Match on CompleteMultipartUpload: neither can be conditional', rootOnly, async () => {
  const Bucket = await bucket();
  await s3.send(new PutObjectCommand({ Bucket, Key: 'k', Body: 'v0' }));
  await s3.send(new DeleteObjectCommand({ Bucket, Key: 'k', IfMatch: '00000000000000000000000000000000' }));
  assert.equal(await statusOf(s3.send(new HeadObjectCommand({ Bucket, Key: 'k' }))), 404, 'a DELETE with a wrong If-Match deleted nothing: RGW honours it now');

  await s3.send(new PutObjectCommand({ Bucket, Key: 'm', Body: 'old' }));
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'm' }));
  const { ETag } = await s3.send(new UploadPartCommand({ Bucket, Key: 'm', UploadId, PartNumber: 1, Body: 'new' }));
  const complete = new CompleteMultipartUploadCommand({ Bucket, Key: 'm', UploadId, IfNoneMatch: '*', MultipartUpload: { Parts: [{ PartNumber: 1, ETag: ETag! }] } });
  assert.equal(await statusOf(s3.send(complete)), 200);
  assert.equal(await text(Bucket, 'm'), 'new', 'If-None-Match on CompleteMultipartUpload kept the old object: RGW honours it now');
});

test('a multipart upload can copy ranges of an object into parts (UploadPartCopy)', rootOnly, async () => {
  const Bucket = await bucket();
  const source = Buffer.alloc(6 * MiB);
  for (let i = 0; i < source.length; i += 4096) source.writeUInt32BE(i, i);
  await s3.send(new PutObjectCommand({ Bucket, Key: 'source', Body: source }));
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'joined' }));
  const copied = await s3.send(
    new UploadPartCopyCommand({ Bucket, Key: 'joined', UploadId, PartNumber: 1, CopySource: `${Bucket}/source`, CopySourceRange: `bytes=0-${5 * MiB - 1}` }),
  );
  const tail = await s3.send(new UploadPartCommand({ Bucket, Key: 'joined', UploadId, PartNumber: 2, Body: 'tail' }));
  await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket, Key: 'joined', UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: copied.CopyPartResult!.ETag! }, { PartNumber: 2, ETag: tail.ETag! }] },
    }),
  );
  const joined = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket, Key: 'joined' }))).Body!.transformToByteArray());
  assert.ok(joined.equals(Buffer.concat([source.subarray(0, 5 * MiB), Buffer.from('tail')])));
});

test('bucket versioning keeps every version of a key', rootOnly, async () => {
  const Bucket = await bucket();
  await s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  for (const Body of ['1', '2', '3']) await s3.send(new PutObjectCommand({ Bucket, Key: 'v', Body }));
  const { Versions } = await s3.send(new ListObjectVersionsCommand({ Bucket, Prefix: 'v' }));
  assert.equal(Versions?.length, 3);
});
