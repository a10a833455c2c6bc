/**
 * One RGW per test run (npm test's, else one per file: a start takes 10 to 30 s) and a bucket per test, with ObjectStores over it: each call of
 * `store()` is a separate client, as a separate server instance would have.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { rootOnly } from '../fixtures/btrfs.ts';
import { sharedOrOwnS3, type S3Server } from '../fixtures/s3.ts';
import { s3ObjectStore, type ObjectStore } from '../../server/archive/object-store.ts';
import { startArchiveServer } from '../../server/archive/archive-serve.ts';
import { silentLogger } from '../../server/log.ts';

export interface TestBucket {
  readonly name: string;
  readonly server: S3Server;
  /** A new store (a new S3 client) on this bucket, under PREFIX (default `archive`). */
  store(prefix?: string): ObjectStore;
}

/** Registers the file's `before`/`after`; call at the top level of a test file. */
export function sharedS3(): { bucket(): Promise<TestBucket> } {
  let server: S3Server | undefined;
  let count = 0;
  before(async () => {
    if (rootOnly.skip === false) server = await sharedOrOwnS3();
  });
  after(() => server?.close());
  return {
    async bucket() {
      assert.ok(server, 'the shared S3 server did not start');
      const s = server;
      const name = `archive-${process.pid}-${++count}`;
      const admin = s.client();
      try {
        await admin.send(new CreateBucketCommand({ Bucket: name }));
      } finally {
        admin.destroy();
      }
      return {
        name,
        server: s,
        store: (prefix = 'archive') =>
          s3ObjectStore({ endpoint: s.endpoint, bucket: name, prefix, region: s.region, accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey }),
      };
    },
  };
}

/** A `serve` in archive mode on BUCKET under PREFIX, on a free loopback port, closed after the test. */
export async function archiveServer(t: { after(fn: () => unknown): void }, bucket: TestBucket, prefix: string): Promise<Awaited<ReturnType<typeof startArchiveServer>>> {
  const { server } = bucket;
  const running = await startArchiveServer({
    host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(),
    store: { endpoint: server.endpoint, bucket: bucket.name, prefix, region: server.region, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } },
  });
  t.after(() => running.close());
  return running;
}
