/**
 * The server's refusal of an incremental whose parent changed on the client after it was sent (server/stream-start.ts
 * parentChangedProblem), at its first frame, on real btrfs: the stream's CLONE_CTRANSID against the Send transid
 * btrfs receive recorded on the server's copy of the parent. test/e2e/changed-parent.test.ts is the push's side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { rootOnly } from '../fixtures/btrfs.ts';
import { SendStreamBuilder, randomUuid } from '../fixtures/send-streams.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { ERROR_CODE_HEADER, META } from '../../core/protocol.ts';
import { hostileServer, metadataFor, settled, uploadStream } from './hostile-client.ts';

test('an incremental whose parent\'s transaction id is not the one it was sent with is refused at frame 0 with 409 parent_changed; one whose parent is a received copy on the client is not judged', rootOnly, async (t) => {
  const h = await hostileServer(t);
  const parent = randomUuid();
  const full = new SendStreamBuilder().subvol('snap', parent, 7).file('a', Buffer.from('as sent\n')).end().build();
  const first = await uploadStream(h.server.url, metadataFor('v', 'p', parent), full);
  assert.equal((await settled(h, first.id)).state, 'received');
  assert.equal((await btrfs.subvolumeShow(path.join(h.volumeDir('v'), 'p'))).sendTransid, 7, 'btrfs receive kept the stream\'s CTRANSID');

  // The client's parent, written to after it was sent: its ctransid is now 12.
  const changed = randomUuid();
  const raw = new SendStreamBuilder().snapshot('snap', changed, parent, 20, 12).file('b', Buffer.from('b\n')).end().build();
  const refused = await uploadStream(h.server.url, metadataFor('v', 's-changed', changed, parent), raw);
  assert.equal(refused.patched.status, 409, refused.patched.text);
  assert.equal(refused.patched.code, 'parent_changed');
  assert.equal(refused.patched.headers.get(ERROR_CODE_HEADER), 'parent_changed');
  const body = JSON.parse(refused.patched.text) as { error: { message: string; retryable: boolean } };
  assert.equal(body.error.retryable, false, 'sent again, the same stream is refused again');
  assert.match(body.error.message, /^the client's p, the parent of this incremental, was changed after it was sent \(transaction id 12, 7 when the server received it\): received on the server's copy, this snapshot would differ from the client's\./);
  const failed = h.server.service.transferRecord(refused.id);
  assert.deepEqual([failed?.state, failed?.error?.code], ['failed', 'parent_changed']);
  assert.deepEqual((await fs.readdir(h.volumeDir('v'))).sort(), ['p'], 'nothing received');

  // The parent as sent: received.
  const same = randomUuid();
  const intact = new SendStreamBuilder().snapshot('snap', same, parent, 20, 7).file('c', Buffer.from('c\n')).end().build();
  const ok = await uploadStream(h.server.url, metadataFor('v', 's-same', same, parent), intact);
  assert.equal(ok.patched.status, 204, ok.patched.text);
  assert.equal((await settled(h, ok.id)).state, 'received');

  // A parent that is a received copy on the client (a restore): its ctransid is the copy's own, no evidence either way.
  const copy = randomUuid();
  const fromCopy = new SendStreamBuilder().snapshot('snap', copy, parent, 30, 99).file('d', Buffer.from('d\n')).end().build();
  const taken = await uploadStream(h.server.url, { ...metadataFor('v', 's-copy', copy, parent), [META.parentReceived]: '1' }, fromCopy);
  assert.equal(taken.patched.status, 204, taken.patched.text);
  const received = await settled(h, taken.id);
  assert.equal(received.state, 'received', received.error?.message);
  assert.equal(received.parentReceived, true);
});
