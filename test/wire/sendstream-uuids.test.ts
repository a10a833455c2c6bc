/**
 * The send-stream UUID rewrite (core/wire/sendstream-uuids.ts): on hand-made streams, exactly the UUIDs btrfs receive
 * resolves change, each rewritten command's CRC32C is right again (checked by the parser, which has its own CRC
 * check), everything else is byte-identical, and chunking changes nothing. On real btrfs: a rewritten full and
 * incremental stream are received, with the new Received UUIDs, the incremental finding its parent by the rewritten
 * parent UUID.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SendStreamUuidRewriter, rewriteCommandUuids, type SendUuidMap } from '../../core/wire/sendstream-uuids.ts';
import { SendStreamParser, type SendCommand } from '../../core/wire/sendstream-parser.ts';
import { sendAttributeUuid } from '../../core/wire/sendstream-attributes.ts';
import { SendAttr, SendCmd } from '../../core/wire/sendstream-format.ts';
import { SendStreamError } from '../../core/wire/sendstream-errors.ts';
import { SendStreamBuilder, randomUuid } from '../fixtures/send-streams.ts';
import { createBtrfs, rootOnly, snapshotReadonly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';

const A = '11111111-2222-4333-8444-555555555555';
const P = '66666666-7777-4888-8999-aaaaaaaaaaaa';
const OTHER = 'bbbbbbbb-cccc-4ddd-8eee-ffffffffffff';
const TO: Record<string, string> = { [A]: '0a0a0a0a-0a0a-4a0a-8a0a-0a0a0a0a0a0a', [P]: '0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b', [OTHER]: '0c0c0c0c-0c0c-4c0c-8c0c-0c0c0c0c0c0c' };
const map: SendUuidMap = (u) => TO[u] ?? u;

function incremental(): Buffer {
  const block = Buffer.alloc(4096, 7);
  return new SendStreamBuilder()
    .snapshot('snap', A, P)
    .file('f', block)
    .clone('f', 0, 4096, P, 'src')
    .clone('f', 0, 4096, A, 'g')
    .clone('f', 0, 4096, OTHER, 'h')
    .end()
    .build();
}

async function rewrite(raw: Buffer, chunk: number, m: SendUuidMap = map): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < raw.length; i += chunk) pieces.push(raw.subarray(i, i + chunk));
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), new SendStreamUuidRewriter(m), new Writable({ write(c: Buffer, _e, cb) { out.push(c); cb(); } }));
  return Buffer.concat(out);
}

/** Every command as the parser sees it (which checks each CRC): name, offset, length, UUID attributes. */
function commands(raw: Buffer): { cmd: number; offset: number; length: number; uuid?: string; clone?: string }[] {
  const seen: { cmd: number; offset: number; length: number; uuid?: string; clone?: string }[] = [];
  const parser = new SendStreamParser({
    onCommand: (c: SendCommand) => {
      const uuid = sendAttributeUuid(c.attributes, SendAttr.UUID);
      const clone = sendAttributeUuid(c.attributes, SendAttr.CLONE_UUID);
      seen.push({ cmd: c.cmd, offset: c.offset, length: c.length, ...(uuid ? { uuid } : {}), ...(clone ? { clone } : {}) });
    },
  });
  parser.push(raw);
  parser.end();
  return seen;
}

test('the UUID of SNAPSHOT, its parent and every CLONE source are mapped, CRCs made right; every other byte is unchanged', async () => {
  const raw = incremental();
  const out = await rewrite(raw, 1 << 20);
  assert.equal(out.length, raw.length, 'a UUID is 16 bytes either way');
  const before = commands(raw);
  const after = commands(out); // throws on a bad CRC
  assert.equal(after.length, before.length);
  for (const [i, b] of before.entries()) {
    const a = after[i]!;
    assert.deepEqual({ cmd: a.cmd, offset: a.offset, length: a.length }, { cmd: b.cmd, offset: b.offset, length: b.length });
    assert.equal(a.uuid, b.uuid === undefined ? undefined : map(b.uuid), `command ${i} UUID`);
    assert.equal(a.clone, b.clone === undefined ? undefined : map(b.clone), `command ${i} CLONE_UUID`);
    const bytesOf = (buf: Buffer, c: typeof b) => buf.subarray(c.offset, c.offset + 10 + c.length);
    const touched = b.cmd === SendCmd.SNAPSHOT || b.cmd === SendCmd.CLONE;
    if (touched) assert.notDeepEqual(bytesOf(out, a), bytesOf(raw, b));
    else assert.deepEqual(bytesOf(out, a), bytesOf(raw, b), `command ${i} passes unchanged`);
  }
  assert.deepEqual(out.subarray(0, 17), raw.subarray(0, 17), 'the stream header is unchanged');
  assert.deepEqual(after.filter((c) => c.cmd === SendCmd.CLONE).map((c) => c.clone), [TO[P], TO[A], TO[OTHER]]);
});

test('SUBVOL: its UUID is mapped; a UUID the map leaves alone gives the very same bytes', async () => {
  const raw = new SendStreamBuilder().subvol('snap', A).file('f', Buffer.from('x')).end().build();
  const out = await rewrite(raw, 1 << 20);
  assert.equal(commands(out)[0]!.uuid, TO[A]);
  assert.deepEqual(await rewrite(raw, 1 << 20, (u) => u), raw);
});

test('chunking changes nothing: one byte at a time, odd sizes, whole', async () => {
  const raw = incremental();
  const whole = await rewrite(raw, raw.length);
  for (const chunk of [1, 3, 10, 17, 27, 4096]) assert.deepEqual(await rewrite(raw, chunk), whole, `chunks of ${chunk}`);
});

test('a command it would rewrite with a bad CRC is refused, never given a good one; a stream cut inside one is truncated', async () => {
  const raw = incremental();
  const bad = Buffer.from(raw);
  bad[17 + 12] = bad[17 + 12]! ^ 1; // inside the SNAPSHOT command's PATH
  await assert.rejects(rewrite(bad, 64), (err: unknown) => err instanceof SendStreamError && err.code === 'sendstream_crc');
  await assert.rejects(rewrite(raw.subarray(0, 17 + 20), 7), (err: unknown) => err instanceof SendStreamError && err.code === 'sendstream_truncated');
});

test('on the real streams of the fixtures (v1 full and incremental, v2 with encoded writes): only UUID commands change, and every UUID they name is mapped', async () => {
  const dir = path.join(import.meta.dirname, 'fixtures-sendstream');
  for (const name of ['full-v1.bin', 'incremental-v1.bin', 'full-v2-compressed.bin']) {
    const raw = await fs.readFile(path.join(dir, name));
    assert.deepEqual(await rewrite(raw, 4093, (u) => u), raw, `${name}: the identity map changes no byte`);
    // Another UUID for each, as a function of it alone (its hex digits reversed).
    const mapOf: SendUuidMap = (u) => {
      const hex = u.replaceAll('-', '').split('').reverse().join('');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    };
    const out = await rewrite(raw, 4093, mapOf);
    const [before, after] = [commands(raw), commands(out)];
    assert.equal(after.length, before.length, name);
    assert.ok(before.some((c) => c.uuid !== undefined), `${name} names a UUID`);
    for (const [i, c] of before.entries()) {
      assert.equal(after[i]!.uuid, c.uuid === undefined ? undefined : mapOf(c.uuid), `${name} command ${i}`);
      assert.equal(after[i]!.clone, c.clone === undefined ? undefined : mapOf(c.clone), `${name} command ${i}`);
      const span = (buf: Buffer) => buf.subarray(c.offset, c.offset + 10 + c.length);
      if (c.uuid === undefined && c.clone === undefined) assert.deepEqual(span(out), span(raw), `${name} command ${i} unchanged`);
    }
  }
});

test('rewriteCommandUuids leaves a command that names no UUID as it is', () => {
  const raw = new SendStreamBuilder().mkdir('d').build().subarray(17);
  assert.equal(rewriteCommandUuids(raw, 1, () => OTHER), raw);
});

test('real btrfs receive takes a rewritten full and incremental stream: the Received UUIDs are the mapped ones, and the incremental finds its parent by the mapped UUID', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const fsx = await createBtrfs(t, { sizeMiB: 256 });
  const src = path.join(fsx.mountPoint, 'src');
  const dest = path.join(fsx.mountPoint, 'dest');
  await fs.mkdir(dest);
  await btrfs.createSubvolume(src);
  await fs.writeFile(path.join(src, 'a'), 'first\n');
  await fs.writeFile(path.join(src, 'big'), Buffer.alloc(256 * 1024, 3));
  await snapshotReadonly(src, path.join(fsx.mountPoint, 's1'));
  await fs.writeFile(path.join(src, 'b'), 'second\n');
  // A reflink copy: the incremental sends it as a CLONE (from the parent or from s2 itself), mapped like the rest.
  await fs.copyFile(path.join(src, 'big'), path.join(src, 'big2'), fs.constants.COPYFILE_FICLONE);
  await snapshotReadonly(src, path.join(fsx.mountPoint, 's2'));
  const [s1, s2] = await Promise.all([btrfs.subvolumeShow(path.join(fsx.mountPoint, 's1')), btrfs.subvolumeShow(path.join(fsx.mountPoint, 's2'))]);
  const mapped: Record<string, string> = { [s1.uuid]: randomUuid(), [s2.uuid]: randomUuid() };
  const m: SendUuidMap = (u) => mapped[u] ?? u;

  const sendRewritten = async (name: string, parent?: string) => {
    const sent = btrfs.send(path.join(fsx.mountPoint, name), parent ? { parent: path.join(fsx.mountPoint, parent) } : {});
    const rewriter = new SendStreamUuidRewriter(m);
    const received = btrfs.receive(dest, rewriter);
    await Promise.all([pipeline(sent.stream, rewriter), received]);
    return btrfs.subvolumeShow(path.join(dest, name));
  };
  const r1 = await sendRewritten('s1');
  assert.equal(r1.receivedUuid, mapped[s1.uuid]);
  // Without the rewrite btrfs would have found the parent by its real UUID (s1 itself); with it, only the received
  // copy has the mapped UUID as its Received UUID, so that is the parent receive uses.
  const r2 = await sendRewritten('s2', 's1');
  assert.equal(r2.receivedUuid, mapped[s2.uuid]);
  assert.equal(r2.parentUuid, r1.uuid, 'snapshotted from the received s1, found by the mapped UUID');
  assert.equal(await fs.readFile(path.join(dest, 's2', 'b'), 'utf8'), 'second\n');
  assert.deepEqual(await fs.readFile(path.join(dest, 's2', 'big2')), Buffer.alloc(256 * 1024, 3));
});
