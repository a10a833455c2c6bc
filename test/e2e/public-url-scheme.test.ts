/**
 * A push whose --server is http:// straight to a server whose publicUrl is https:// (meant to be reached through its
 * TLS proxy): the creation's Location is https, which the http agent cannot follow. The push stops at once with the
 * mismatch and the --server to give, instead of retrying `Protocol "http:" not supported` for ever.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { createPair, recordingReporter } from './harness.ts';

test('push --server http:// to a server whose publicUrl is https:// stops at once, naming the mismatch', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer({ publicUrl: 'https://backup.example.net/sf' });
  const s1 = await pair.snapshot('s1');
  await assert.rejects(
    push({ server: server.url, volume: 'home', snapshots: [s1], retries: 2, backoff: { baseMs: 100, maxMs: 200 }, pollMs: 100 }, recordingReporter()),
    (err: Error & { code?: string; retryable?: boolean }) => {
      assert.equal(err.code, 'upload_url_scheme_mismatch', err.message);
      assert.equal(err.retryable, false);
      assert.match(err.message, /upload URL on https:\/\/ \(https:\/\/backup\.example\.net\) although --server is http:\/\/.*give --server as https:\/\/backup\.example\.net\/sf/);
      return true;
    },
  );
  // The refused upload was ended on --server's origin, not left holding the volume until it expires.
  const transfers = (await new ServerApi({ server: server.url }).transfers()).transfers;
  assert.ok(transfers.every((x) => x.state !== 'uploading'), JSON.stringify(transfers.map((x) => x.state)));
});
