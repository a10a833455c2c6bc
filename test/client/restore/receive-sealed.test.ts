/**
 * A restore's receive of a sealed spool (client-side encryption), on real btrfs: with the key the stream is opened
 * and received as it was sent; with another key (wrong_key), with none (key_required), or bound to another parent
 * (frame_corrupt), it is refused at frame 0, before btrfs receive gets a byte: DEST_DIR is left as it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createBtrfs, rootOnly } from '../../fixtures/btrfs.ts';
import { SendStreamBuilder, randomUuid } from '../../fixtures/send-streams.ts';
import { FrameEncoder, streamIdentity } from '../../../core/wire/index.ts';
import { deriveKeys, type SealKey } from '../../../core/crypto/keys.ts';
import { SealError } from '../../../core/crypto/errors.ts';
import * as btrfs from '../../../core/btrfs/index.ts';
import { receiveSpool } from '../../../client/restore/receive.ts';

const CHUNK = 65536;

async function sealedSpool(file: string, raw: Buffer, key: SealKey, uuid: string): Promise<void> {
  const parts: Buffer[] = [];
  await pipeline(
    Readable.from([raw]),
    new FrameEncoder({ chunkSize: CHUNK, seal: { key, stream: streamIdentity(uuid, null) } }),
    new Writable({ write: (c: Buffer, _e, cb) => (parts.push(c), cb()) }),
  );
  await fs.writeFile(file, Buffer.concat(parts));
}

test('a sealed spool is received with its key, and refused with another key, none, or as another stream', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const fsx = await createBtrfs(t);
  const dest = path.join(fsx.mountPoint, 'dest');
  await fs.mkdir(dest);
  const uuid = randomUuid();
  // Several frames' worth (64 KiB chunks), compressible and not, with a marker to look for.
  const content = Buffer.concat([Buffer.from('SEALED-MARKER '), Buffer.alloc(40_000, 'a'), Buffer.from('end\n')]);
  const noise = randomBytes(50_000);
  const raw = new SendStreamBuilder().subvol('snap', uuid).file('f', content).file('g', noise).file('h', noise).end().build();
  const key = deriveKeys(Buffer.alloc(32, 1));
  const framesFile = path.join(fsx.mountPoint, 'frames');
  await sealedSpool(framesFile, raw, key, uuid);
  assert.ok(!(await fs.readFile(framesFile)).includes('SEALED-MARKER'));
  const job = { framesFile, chunkSize: CHUNK, destDir: dest, name: 'snap', uuid };

  const refusals: [string, Parameters<typeof receiveSpool>[0]][] = [
    ['wrong_key', { ...job, parentUuid: null, sealKey: deriveKeys(Buffer.alloc(32, 2)) }],
    ['key_required', { ...job, parentUuid: null }],
    // Bound to (uuid, no parent): opened as an incremental's stream it does not open. A parent that is not there
    // would fail later in btrfs receive; the seal refuses first.
    ['frame_corrupt', { ...job, parentUuid: randomUuid(), sealKey: key }],
  ];
  for (const [code, refused] of refusals) {
    await assert.rejects(receiveSpool(refused), (err: unknown) => err instanceof SealError && err.code === code, code);
    assert.deepEqual(await fs.readdir(dest), [], `${code}: nothing received, nothing staged`);
  }

  const got = await receiveSpool({ ...job, parentUuid: null, sealKey: key });
  assert.equal(got.path, path.join(dest, 'snap'));
  assert.ok((await fs.readFile(path.join(dest, 'snap', 'f'))).equals(content));
  assert.ok((await fs.readFile(path.join(dest, 'snap', 'h'))).equals(noise));
  const shown = await btrfs.subvolumeShow(path.join(dest, 'snap'));
  assert.deepEqual([shown.receivedUuid, shown.readonly], [uuid, true]);
});
