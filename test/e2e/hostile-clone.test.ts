/**
 * A stream whose commands name a path that does not resolve in the snapshot being received (a CLONE from a source
 * path that is not there, a WRITE to a file never made) is the stream's fault: btrfs receive says "cannot open ...:
 * No such file or directory", and the transfer fails at once with `sendstream_cannot_apply`. It does not wait and
 * retry its receive for ever as if the server were at fault.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import { SendStreamBuilder, randomUuid } from '../fixtures/send-streams.ts';
import { hostileServer, metadataFor, uploadStream, type HostileServer } from './hostile-client.ts';

const block = Buffer.alloc(4096, 7);

/** The transfer's state once it left uploading and receiving, or whatever it is after `ms`. */
async function outcome(h: HostileServer, id: string, ms: number) {
  const end = Date.now() + ms;
  for (;;) {
    await h.server.service.idle();
    const t = h.server.service.transferRecord(id);
    if ((t && !['uploading', 'receiving'].includes(t.state)) || Date.now() > end) return t;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a stream naming a path that does not resolve fails its transfer as the stream\'s fault, within seconds, instead of waiting to retry', rootOnly, async (t) => {
  const h = await hostileServer(t);

  // The control: the same stream with a clone source that exists is received, so each failure below is its path's.
  const good = randomUuid();
  const control = new SendStreamBuilder().subvol('snap', good).file('src', block).file('f', block).clone('f', 0, 4096, good, 'src').end().build();
  const ok = await uploadStream(h.server.url, metadataFor('good', 'snap', good), control);
  assert.equal(ok.patched.status, 204, ok.patched.text);
  const received = await outcome(h, ok.id, 20_000);
  assert.equal(received?.state, 'received', received?.error?.message);

  const cases: { name: string; build: (uuid: string) => Buffer }[] = [
    // process_clone: openat(mnt_fd, subvol/clone_path) fails, "cannot open snap/missing: No such file or directory".
    { name: 'clone from a source path that is not there', build: (u) => new SendStreamBuilder().subvol('snap', u).file('f', block).clone('f', 0, 4096, u, 'missing').end().build() },
    // The same, through a file taken for a directory: ENOTDIR.
    { name: 'clone from below a file', build: (u) => new SendStreamBuilder().subvol('snap', u).file('src', block).file('f', block).clone('f', 0, 4096, u, 'src/x').end().build() },
    // open_inode_for_write: a WRITE to a path the stream never made.
    { name: 'write to a file never made', build: (u) => new SendStreamBuilder().subvol('snap', u).file('f', block).write('nowhere', block).end().build() },
  ];
  for (const [i, c] of cases.entries()) {
    const uuid = randomUuid();
    const volume = `v${i}`;
    const started = Date.now();
    const { id, patched } = await uploadStream(h.server.url, metadataFor(volume, 'snap', uuid), c.build(uuid));
    assert.equal(patched.status, 204, `${c.name}: ${patched.text}`);
    const got = await outcome(h, id, 15_000);
    assert.equal(got?.state, 'failed', `${c.name}: ${got?.state} (${got?.error?.code}: ${got?.error?.message})`);
    assert.equal(got?.error?.code, 'sendstream_cannot_apply', `${c.name}: ${got?.error?.message}`);
    assert.match(got?.error?.message ?? '', /No such file or directory|Not a directory/, c.name);
    assert.ok(Date.now() - started < 15_000, `${c.name}: failed within seconds`);
    // The failed transfer keeps nothing in the volume folder: its staging subvolume was deleted.
    assert.deepEqual(await fs.readdir(h.volumeDir(volume)).catch(() => []), [], c.name);
  }
});
