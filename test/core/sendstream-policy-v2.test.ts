/**
 * The receiver's rules on send stream version 2 (`btrfs send --proto 2 --compressed-data`): a real stream from a
 * compressed filesystem passes; ENCODED_WRITE and FALLOCATE get the same path rules as WRITE; an ENCODED_WRITE whose
 * sizes btrfs send never writes is refused before btrfs receive could decompress it into a buffer it sized from them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as btrfs from '../../core/btrfs/index.ts';
import { SendStreamCheck } from '../../core/wire/sendstream-check.ts';
import { SendStreamPolicyError, type SendStreamPolicy } from '../../core/wire/sendstream-policy.ts';
import { SendCmd, SendAttr } from '../../core/wire/sendstream-format.ts';
import { SendStreamBuilder, randomUuid } from '../fixtures/send-streams.ts';
import { dataTlv, slices, tlv, u32, u64 } from '../wire/sendstream-builder.ts';
import { createBtrfs, fillVaried, rootOnly, snapshotReadonly } from '../fixtures/btrfs.ts';

const SELF = randomUuid();
const STRICT: SendStreamPolicy = { parentUuid: null, cloneSources: [], allowDevices: false, allowSetuid: false };
const KiB = 1024;

async function check(bytes: Buffer | Readable, policy: SendStreamPolicy, onCommand?: (name: string) => void): Promise<unknown> {
  const source = Buffer.isBuffer(bytes) ? Readable.from(slices(bytes, 29)) : bytes;
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  try {
    await pipeline(source, new SendStreamCheck({ policy, ...(onCommand ? { onCommand: (c) => onCommand(c.name) } : {}) }), sink);
    return undefined;
  } catch (err) {
    return err;
  }
}

async function refused(bytes: Buffer, code: string): Promise<SendStreamPolicyError> {
  const err = await check(bytes, STRICT);
  assert.ok(err instanceof SendStreamPolicyError, `expected ${code}, got ${String(err)}`);
  assert.equal(err.code, code);
  assert.equal(err.retryable, false);
  return err;
}

interface Encoded {
  path?: string | Buffer;
  unencodedLen?: number;
  fileLen?: number;
  offset?: number;
  compression?: number;
  encryption?: number;
  data?: Buffer;
}

/** An ENCODED_WRITE as the kernel writes one (send.c send_encoded_extent), with any field changed. */
function encodedWrite(e: Encoded = {}): Buffer[] {
  const parts = [
    tlv(SendAttr.PATH, e.path ?? 'f'),
    tlv(SendAttr.FILE_OFFSET, u64(0)),
    tlv(SendAttr.UNENCODED_FILE_LEN, u64(e.fileLen ?? 10_400)),
    tlv(SendAttr.UNENCODED_LEN, u64(e.unencodedLen ?? 12 * KiB)),
    tlv(SendAttr.UNENCODED_OFFSET, u64(e.offset ?? 0)),
  ];
  if (e.compression !== -1) parts.push(tlv(SendAttr.COMPRESSION, u32(e.compression ?? 2)));
  parts.push(tlv(SendAttr.ENCRYPTION, u32(e.encryption ?? 0)), dataTlv(2, e.data ?? Buffer.alloc(4 * KiB, 7)));
  return parts;
}

function v2With(...commands: Buffer[][]): Buffer {
  const b = new SendStreamBuilder(2).subvol('snap', SELF).file('f', Buffer.from('x'));
  for (const attrs of commands) b.cmd(SendCmd.ENCODED_WRITE, ...attrs);
  return b.end().build();
}

test('a real version 2 stream with compressed extents passes the policy', rootOnly, async (t) => {
  const fsx = await createBtrfs(t, { sizeMiB: 256, mountOptions: ['compress=zstd'] });
  const vol = `${fsx.mountPoint}/vol`;
  await btrfs.createSubvolume(vol);
  await fillVaried(vol, { seed: 'policy-v2', sizeMB: 2 });
  await writeFile(`${vol}/log.txt`, 'policy v2 line\n'.repeat(50_000));
  await snapshotReadonly(vol, `${fsx.mountPoint}/s1`);
  const handle = btrfs.send(`${fsx.mountPoint}/s1`, { proto: 2, compressedData: true });
  const seen = new Map<string, number>();
  const err = await check(handle.stream, { ...STRICT, allowDevices: true, allowSetuid: true }, (name) => seen.set(name, (seen.get(name) ?? 0) + 1));
  await handle.done;
  assert.equal(err, undefined);
  assert.ok((seen.get('ENCODED_WRITE') ?? 0) > 10, `ENCODED_WRITE commands: ${seen.get('ENCODED_WRITE')}`);
});

test('a well-formed hand-made ENCODED_WRITE passes, so the refusals below are the rules', async () => {
  assert.equal(await check(v2With(encodedWrite()), STRICT), undefined);
  // Largest extent the kernel sends: 128 KiB either way, a file range at the end of it.
  const max = encodedWrite({ unencodedLen: 128 * KiB, offset: 64 * KiB, fileLen: 64 * KiB, data: Buffer.alloc(128 * KiB) });
  assert.equal(await check(v2With(max), STRICT), undefined);
});

test('ENCODED_WRITE and FALLOCATE paths follow the rules of every path', async () => {
  for (const path of ['../escaped', 'a/../../b', '/etc/cron.d/x', Buffer.from('ok\0/../../x')]) {
    const err = await refused(v2With(encodedWrite({ path })), 'sendstream_unsafe_path');
    assert.equal(err.details.commandName, 'ENCODED_WRITE');
    assert.equal(err.details.attribute, 'PATH');
  }
  const fallocate = new SendStreamBuilder(2)
    .subvol('snap', SELF)
    .cmd(SendCmd.FALLOCATE, tlv(SendAttr.PATH, '../x'), tlv(SendAttr.FALLOCATE_MODE, u32(0)), tlv(SendAttr.FILE_OFFSET, u64(0)), tlv(SendAttr.SIZE, u64(4096)))
    .end()
    .build();
  assert.equal((await refused(fallocate, 'sendstream_unsafe_path')).details.commandName, 'FALLOCATE');
});

test('an ENCODED_WRITE with sizes btrfs send never writes is refused', async () => {
  const cases: [string, Encoded, RegExp][] = [
    ['file range past the extent', { unencodedLen: 4 * KiB, offset: 2 * KiB, fileLen: 4 * KiB }, /runs past UNENCODED_LEN/],
    ['huge extent', { unencodedLen: 2 ** 40, fileLen: 4 * KiB }, /UNENCODED_LEN is 1099511627776 bytes/],
    ['too much encoded data', { data: Buffer.alloc(128 * KiB + 1) }, /131073 bytes of encoded data/],
    ['no compression', { compression: 0 }, /COMPRESSION is 0/],
    ['unknown compression', { compression: 8 }, /COMPRESSION is 8/],
    ['missing compression', { compression: -1 }, /lacks one of/],
    ['encrypted', { encryption: 1 }, /ENCRYPTION is 1/],
  ];
  for (const [name, fields, message] of cases) {
    const err = await refused(v2With(encodedWrite(fields)), 'sendstream_bad_encoded_write');
    assert.match(err.message, message, name);
    assert.equal(err.details.commandName, 'ENCODED_WRITE', name);
  }
});

test('a version 1 stream cannot carry ENCODED_WRITE at all', async () => {
  const v1 = new SendStreamBuilder(1).subvol('snap', SELF).cmd(SendCmd.ENCODED_WRITE, ...encodedWrite()).end().build();
  const err = await check(v1, STRICT);
  assert.equal((err as { code?: string }).code, 'sendstream_bad_command');
});
