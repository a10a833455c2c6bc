/**
 * The server's side of the upload metadata key `sendStream`: it says in GET /v1/status which stream versions its
 * btrfs receive reads, validates the key, holds frame 0 to the version the key promised, and applies the path rules
 * to a version 2 stream's ENCODED_WRITE before btrfs receive sees it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import { SendStreamBuilder, randomUuid } from '../fixtures/send-streams.ts';
import { SendAttr, SendCmd } from '../../core/wire/sendstream-format.ts';
import { META, Status, routes } from '../../core/protocol.ts';
import { dataTlv, tlv, u32, u64 } from '../wire/sendstream-builder.ts';
import { create, encodeMetadata, hostileServer, listTree, metadataFor, settled, uploadStream, writtenOutside } from './hostile-client.ts';

const CANARY = `send-stream-meta-canary-${process.pid}`;

/** A version 2 stream whose frame 0 holds only harmless commands (a file larger than a 64 KiB chunk). */
function v2Padded(uuid: string): SendStreamBuilder {
  const b = new SendStreamBuilder(2).subvol('snap', uuid).file('pad', Buffer.alloc(32768, 1));
  for (let at = 32768; at < 3 * 32768; at += 32768) b.write('pad', Buffer.alloc(32768, 1), at);
  return b;
}

function encodedWrite(path: string): Buffer[] {
  return [
    tlv(SendAttr.PATH, path), tlv(SendAttr.FILE_OFFSET, u64(0)), tlv(SendAttr.UNENCODED_FILE_LEN, u64(4096)),
    tlv(SendAttr.UNENCODED_LEN, u64(4096)), tlv(SendAttr.UNENCODED_OFFSET, u64(0)), tlv(SendAttr.COMPRESSION, u32(2)),
    tlv(SendAttr.ENCRYPTION, u32(0)), dataTlv(2, Buffer.alloc(100, 3)),
  ];
}

test('the server says which stream versions it receives, and validates the sendStream key', rootOnly, async (t) => {
  const h = await hostileServer(t);
  const status = Status.parse(await (await fetch(`${h.server.url}${routes.status}`)).json());
  assert.deepEqual(status.receiveStreamVersions, [1, 2], 'btrfs-progs 6.2 receives versions 1 and 2');

  const bad = await create(h.server.url, { 'Upload-Metadata': encodeMetadata({ ...metadataFor('v', 'snap', randomUuid()), [META.sendStream]: 'v9-zip' }) });
  assert.equal(bad.status, 400, bad.text);
  assert.equal(bad.code, 'invalid_input');
  assert.match(bad.text, /sendStream is \\"v9-zip\\", not one of v1, v2-compressed/);
});

test('frame 0 must be the stream version the upload declared, either way', rootOnly, async (t) => {
  const h = await hostileServer(t);
  const cases: [string | undefined, number][] = [[undefined, 2], ['v1', 2], ['v2-compressed', 1]];
  for (const [declared, version] of cases) {
    const uuid = randomUuid();
    const meta = { ...metadataFor(`v${version}-${declared ?? 'none'}`, 'snap', uuid), ...(declared ? { [META.sendStream]: declared } : {}) };
    const raw = new SendStreamBuilder(version).subvol('snap', uuid).file('f', Buffer.from('x')).end().build();
    const { id, patched } = await uploadStream(h.server.url, meta, raw);
    assert.equal(patched.status, 422, `${declared}: ${patched.text}`);
    assert.equal(patched.code, 'stream_metadata_mismatch');
    assert.match(patched.text, new RegExp(`it is send stream version ${version}, not ${3 - version}`));
    // The stream cannot become what the upload declared: the transfer is over, with the reason, and nothing was received.
    const t1 = h.server.service.transferRecord(id);
    assert.equal(t1?.state, 'failed', 'a stream refused at its first frame ends its transfer');
    assert.equal(t1?.error?.code, 'stream_metadata_mismatch');
    assert.deepEqual(await fs.readdir(h.volumeDir(`v${version}-${declared ?? 'none'}`)).catch(() => []), [], 'nothing received');
  }
});

test('a version 2 stream is received only after its ENCODED_WRITE paths pass the same rules as WRITE', rootOnly, async (t) => {
  const h = await hostileServer(t);
  for (const path of [`../${CANARY}`, `/tmp/${CANARY}`]) {
    const uuid = randomUuid();
    const volume = `hostile-${path.startsWith('/') ? 'abs' : 'up'}`;
    const before = await listTree(h.mount);
    const raw = v2Padded(uuid).cmd(SendCmd.ENCODED_WRITE, ...encodedWrite(path)).end().build();
    const { id, patched } = await uploadStream(h.server.url, { ...metadataFor(volume, 'snap', uuid), [META.sendStream]: 'v2-compressed' }, raw);
    assert.equal(patched.status, 204, patched.text);
    const done = await settled(h, id);
    assert.equal(done.sendStream, 'v2-compressed');
    assert.deepEqual([done.state, done.error?.code], ['failed', 'sendstream_unsafe_path'], done.error?.message);
    assert.match(done.error?.message ?? '', /\(ENCODED_WRITE\).*could leave the snapshot/);
    assert.deepEqual(await writtenOutside(h.mount, before, volume), []);
    assert.deepEqual(await fs.readdir(h.volumeDir(volume)).catch(() => []), [], 'btrfs receive never ran');
    await assert.rejects(fs.access(`/tmp/${CANARY}`));
  }
});
