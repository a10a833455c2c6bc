import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readFile } from 'node:fs/promises';
import { SendStreamCheck } from '../../core/wire/sendstream-check.ts';
import { SendStreamPolicyError, unsafeNameReason, unsafePathReason, type SendStreamPolicy } from '../../core/wire/sendstream-policy.ts';
import { SendStreamParser } from '../../core/wire/sendstream-parser.ts';
import { SendCmd } from '../../core/wire/sendstream-format.ts';
import { SendStreamBuilder, randomUuid } from '../fixtures/send-streams.ts';
import { slices } from '../wire/sendstream-builder.ts';

const SELF = randomUuid();
const PARENT = randomUuid();
const SIBLING = randomUuid();
const FULL: SendStreamPolicy = { parentUuid: null, cloneSources: [], allowDevices: true, allowSetuid: true };
const INCREMENTAL: SendStreamPolicy = { parentUuid: PARENT, cloneSources: [PARENT, SIBLING], allowDevices: true, allowSetuid: true };
const data = Buffer.from('payload\n');

/** Runs `bytes` through a check with `policy`, in small slices so commands span chunks; returns the failure. */
async function check(bytes: Buffer, policy: SendStreamPolicy): Promise<unknown> {
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  try {
    await pipeline(Readable.from(slices(bytes, 13)), new SendStreamCheck({ policy }), sink);
    return undefined;
  } catch (err) {
    return err;
  }
}

async function refused(bytes: Buffer, policy: SendStreamPolicy, code: string, index?: number): Promise<SendStreamPolicyError> {
  const err = await check(bytes, policy);
  assert.ok(err instanceof SendStreamPolicyError, `expected ${code}, got ${String(err)}`);
  assert.equal(err.code, code);
  assert.equal(err.retryable, false);
  if (index !== undefined) assert.equal(err.details.commandIndex, index);
  return err;
}

const full = () => new SendStreamBuilder().subvol('snap', SELF);

test('a harmless full stream passes, and so does an incremental from the chosen parent that clones from it', async () => {
  assert.equal(await check(full().mkdir('d').file('d/a', data).symlink('abs', '/etc/passwd').symlink('up', '../../x').end().build(), FULL), undefined);
  const incremental = new SendStreamBuilder()
    .snapshot('snap', SELF, PARENT)
    .file('b', data)
    .clone('b', 0, 4096, PARENT, 'a')
    .clone('c', 0, 4096, SIBLING, 'a')
    .clone('d', 0, 4096, SELF, 'b')
    .end()
    .build();
  assert.equal(await check(incremental, INCREMENTAL), undefined);
});

test('committed real streams pass their own policy', async () => {
  const dir = new URL('../wire/fixtures-sendstream/', import.meta.url);
  for (const name of ['full-v1.bin', 'full-v2-compressed.bin', 'incremental-v1.bin']) {
    const bytes = await readFile(new URL(name, dir));
    const parser = new SendStreamParser();
    parser.push(bytes);
    const header = parser.end().header;
    const parentUuid = header.kind === 'snapshot' ? header.cloneUuid : null;
    const policy: SendStreamPolicy = { parentUuid, cloneSources: parentUuid ? [parentUuid] : [], allowDevices: false, allowSetuid: false };
    assert.equal(await check(bytes, policy), undefined, name);
  }
});

test('paths that climb out, are absolute, or hide a NUL are refused, in every path attribute', async () => {
  const err = await refused(full().file('../escaped', data).end().build(), FULL, 'sendstream_unsafe_path');
  assert.match(err.message, /"\.\.\/escaped".*"\.\." component/);
  await refused(full().file('a/../../b', data).end().build(), FULL, 'sendstream_unsafe_path');
  await refused(full().file('a/..', data).end().build(), FULL, 'sendstream_unsafe_path');
  await refused(full().write('/etc/cron.d/x', data).end().build(), FULL, 'sendstream_unsafe_path', 1);
  await refused(full().write(Buffer.from('ok\0/../../x'), data).end().build(), FULL, 'sendstream_unsafe_path', 1);
  const link = full().file('a', data).cmd(SendCmd.LINK, ...linkAttrs('b', '../../outside')).end().build();
  await refused(link, FULL, 'sendstream_unsafe_path');
  await refused(full().clone('a', 0, 4096, SELF, '../../other/file').end().build(), FULL, 'sendstream_unsafe_path');
});

test('the subvolume must be one plain name, and based on exactly the parent the receiver chose', async () => {
  await refused(new SendStreamBuilder().subvol('../../etc', SELF).end().build(), FULL, 'sendstream_unsafe_name', 0);
  await refused(new SendStreamBuilder().subvol('a/b', SELF).end().build(), FULL, 'sendstream_unsafe_name', 0);
  await refused(new SendStreamBuilder().subvol('..', SELF).end().build(), FULL, 'sendstream_unsafe_name', 0);
  await refused(new SendStreamBuilder().subvol('a\u0007b', SELF).end().build(), FULL, 'sendstream_unsafe_name', 0);
  await refused(new SendStreamBuilder().subvol('x'.repeat(256), SELF).end().build(), FULL, 'sendstream_unsafe_name', 0);
  const wrong = await refused(new SendStreamBuilder().snapshot('s', SELF, SIBLING).end().build(), INCREMENTAL, 'sendstream_wrong_parent', 0);
  assert.equal(wrong.details.parentUuid, SIBLING);
  await refused(new SendStreamBuilder().snapshot('s', SELF, PARENT).end().build(), FULL, 'sendstream_wrong_parent', 0);
  await refused(full().end().build(), INCREMENTAL, 'sendstream_wrong_parent', 0);
});

test('clones from any subvolume but this one and the allowed sources are refused', async () => {
  const foreign = randomUuid();
  const err = await refused(full().file('a', data).clone('a', 0, 4096, foreign, 'secret').end().build(), FULL, 'sendstream_foreign_clone');
  assert.equal(err.details.cloneUuid, foreign);
  // The parent is a clone source only when the policy says so.
  await refused(full().clone('a', 0, 4096, PARENT, 'a').end().build(), FULL, 'sendstream_foreign_clone');
});

test('device nodes, setuid modes and file capabilities are refused only when the policy says so', async () => {
  const strict: SendStreamPolicy = { ...FULL, allowDevices: false, allowSetuid: false };
  const dev = full().mknod('null', 0o020666).end().build();
  assert.equal(await check(dev, FULL), undefined);
  await refused(dev, strict, 'sendstream_device_refused');
  await refused(full().mknod('sda', 0o060600).end().build(), strict, 'sendstream_device_refused');
  assert.equal(await check(full().mknod('fifo', 0o010644).end().build(), strict), undefined, 'a FIFO carries no privilege');
  const suid = full().file('sh', data, 0o4755).end().build();
  assert.equal(await check(suid, FULL), undefined);
  await refused(suid, strict, 'sendstream_setuid_refused');
  await refused(full().file('sh', data, 0o2755).end().build(), strict, 'sendstream_setuid_refused');
  const caps = full().file('ping', data).setXattr('ping', 'security.capability', Buffer.alloc(20, 1)).end().build();
  assert.equal(await check(caps, FULL), undefined);
  await refused(caps, strict, 'sendstream_setuid_refused');
  assert.equal(await check(full().file('f', data).setXattr('f', 'user.note', data).end().build(), strict), undefined);
});

test('framing failures still come from the parser: two subvolumes, a missing END', async () => {
  const two = await check(full().subvol('other', randomUuid()).end().build(), FULL);
  assert.equal((two as { code?: string }).code, 'sendstream_second_subvolume');
  const open = await check(full().file('a', data).build(), FULL);
  assert.equal((open as { code?: string }).code, 'sendstream_truncated');
});

test('path and name rules on raw bytes', () => {
  assert.equal(unsafePathReason(Buffer.from('')), undefined);
  assert.equal(unsafePathReason(Buffer.from('a/.b/..c/...')), undefined);
  assert.equal(unsafePathReason(Buffer.from('./a')), undefined);
  assert.ok(unsafePathReason(Buffer.from('..')));
  assert.ok(unsafePathReason(Buffer.from('a//../b')));
  assert.equal(unsafeNameReason(Buffer.from('home@2024-01-01')), undefined);
  assert.ok(unsafeNameReason(Buffer.from('.')));
  assert.ok(unsafeNameReason(Buffer.from('')));
});

function linkAttrs(path: string, target: string): Buffer[] {
  const tlv = (type: number, value: string) => {
    const v = Buffer.from(value);
    const h = Buffer.alloc(4);
    h.writeUInt16LE(type, 0);
    h.writeUInt16LE(v.length, 2);
    return Buffer.concat([h, v]);
  };
  return [tlv(15, path), tlv(17, target)];
}
