/**
 * The send-stream reader against streams that this machine's kernel and btrfs-progs really write: full, incremental,
 * protocol 2, protocol 2 with compressed data, and the odd shapes `btrfs send` makes with several subvolumes.
 * Needs root (loop device, mount). The btrfs helper here is minimal on purpose; core/btrfs is the real gate.
 *
 * With SNAPFERRY_WRITE_SENDSTREAM_FIXTURES=1 it also rewrites test/wire/fixtures-sendstream/ from a tiny subvolume.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { SendStreamParser } from '../../core/wire/sendstream-parser.ts';
import type { SendCommand, SendStreamSummary } from '../../core/wire/sendstream-parser.ts';
import { SendStreamCheck } from '../../core/wire/sendstream-check.ts';
import { SendStreamError } from '../../core/wire/sendstream-errors.ts';
import { sendAttributeString } from '../../core/wire/sendstream-attributes.ts';
import { SendAttr } from '../../core/wire/sendstream-format.ts';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root to make a btrfs filesystem on a loop device (run the tests as root)';

interface LoopFs {
  dir: string;
  mnt: string;
}

/** A fresh 200 MB btrfs on a loop file, mounted compress=zstd; unmounted and detached in t.after, whatever happens. */
async function makeLoopFs(t: TestContext): Promise<LoopFs> {
  const dir = await mkdtemp(join(tmpdir(), `snapferry-sendstream-${process.pid}-`));
  const img = join(dir, 'fs.img');
  const mnt = join(dir, 'mnt');
  // What has been set up so far, so that cleanup undoes exactly that, in reverse.
  const made: { loop?: string; mounted?: boolean } = {};
  t.after(async () => {
    if (made.mounted === true) await execa('umount', [mnt], { reject: false });
    if (made.loop !== undefined) await execa('losetup', ['-d', made.loop], { reject: false });
    await rm(dir, { recursive: true, force: true });
  });
  await mkdir(mnt);
  await execa('truncate', ['-s', '200M', img]);
  await execa('mkfs.btrfs', ['-q', img]);
  made.loop = (await execa('losetup', ['--find', '--show', img])).stdout.trim();
  await execa('mount', ['-o', 'compress=zstd', made.loop, mnt]);
  made.mounted = true;
  return { dir, mnt };
}

async function btrfs(...args: string[]): Promise<string> {
  return (await execa('btrfs', args)).stdout;
}

async function subvolumeUuid(path: string): Promise<string> {
  const match = /^\s*UUID:\s+(\S+)\s*$/m.exec(await btrfs('subvolume', 'show', path));
  assert.ok(match?.[1], `no UUID in btrfs subvolume show ${path}`);
  return match[1];
}

/** btrfs send to a file (the stream is small); returns its bytes. */
async function sendToFile(out: string, args: string[]): Promise<Buffer> {
  await execa('btrfs', ['send', '-q', '-f', out, ...args]);
  return readFile(out);
}

function parseAll(bytes: Buffer, chunkSize = 65536): { summary: SendStreamSummary; commands: SendCommand[]; paths: Set<string> } {
  const commands: SendCommand[] = [];
  const paths = new Set<string>();
  const parser = new SendStreamParser({
    onCommand: (c) => {
      commands.push({ ...c, attributes: [] });
      for (const type of [SendAttr.PATH, SendAttr.PATH_TO, SendAttr.PATH_LINK, SendAttr.CLONE_PATH]) {
        const path = sendAttributeString(c.attributes, type);
        if (path !== undefined) paths.add(path);
      }
    },
  });
  for (let i = 0; i < bytes.length; i += chunkSize) parser.push(bytes.subarray(i, i + chunkSize));
  return { summary: parser.end(), commands, paths };
}

function failureOf(bytes: Buffer): SendStreamError {
  const parser = new SendStreamParser();
  try {
    parser.push(bytes);
    parser.end();
  } catch (err) {
    assert.ok(err instanceof SendStreamError, String(err));
    return err;
  }
  assert.fail('the stream was accepted');
}

void test('real btrfs send streams', { skip }, async (t) => {
  const { dir, mnt } = await makeLoopFs(t);
  const vol = join(mnt, 'vol');
  await btrfs('subvolume', 'create', vol);
  await mkdir(join(vol, 'docs'));
  await writeFile(join(vol, 'hello.txt'), 'hello, snapferry\n');
  await writeFile(join(vol, 'docs', 'text.txt'), 'compressible line of text\n'.repeat(20000));
  await writeFile(join(vol, 'random.bin'), Buffer.from(Array.from({ length: 300000 }, (_, i) => (i * 7919) % 251)));
  await execa('ln', ['-s', 'hello.txt', join(vol, 'link')]);
  await execa('sync');
  const s1 = join(mnt, 's1');
  await btrfs('subvolume', 'snapshot', '-r', vol, s1);
  await writeFile(join(vol, 'hello.txt'), 'hello again\n', { flag: 'a' });
  await execa('cp', ['--reflink=always', join(vol, 'random.bin'), join(vol, 'random-copy.bin')]);
  await execa('mv', [join(vol, 'docs', 'text.txt'), join(vol, 'docs', 'renamed.txt')]);
  await execa('sync');
  const s2 = join(mnt, 's2');
  await btrfs('subvolume', 'snapshot', '-r', vol, s2);
  const uuid1 = await subvolumeUuid(s1);
  const uuid2 = await subvolumeUuid(s2);

  const full = await sendToFile(join(dir, 'full.bin'), [s1]);

  await t.test('a full send: SUBVOL named after the snapshot with its UUID, every path, END last', () => {
    const { summary, commands, paths } = parseAll(full);
    assert.equal(summary.version, 1);
    assert.equal(summary.header.kind, 'subvol');
    assert.equal(summary.header.path, 's1');
    assert.equal(summary.header.uuid, uuid1);
    assert.ok(summary.header.ctransid > 0);
    assert.equal(summary.bytes, full.length);
    assert.equal(commands.at(-1)?.name, 'END');
    for (const name of ['hello.txt', 'docs/text.txt', 'random.bin', 'link']) assert.ok(paths.has(name), `path ${name} seen`);
    // 1-byte slices of a real stream give the same summary.
    assert.deepEqual(parseAll(full.subarray(0), 1).summary, summary);
  });

  await t.test('an incremental send: SNAPSHOT whose clone UUID is the parent', async () => {
    const incremental = await sendToFile(join(dir, 'inc.bin'), ['-p', s1, s2]);
    const { summary, commands, paths } = parseAll(incremental);
    assert.equal(summary.header.kind, 'snapshot');
    assert.equal(summary.header.path, 's2');
    assert.equal(summary.header.uuid, uuid2);
    assert.ok(summary.header.kind === 'snapshot' && summary.header.cloneUuid === uuid1);
    assert.ok(paths.has('docs/renamed.txt'));
    assert.ok(commands.some((c) => c.name === 'CLONE'), 'the reflinked copy is sent as CLONE');
  });

  await t.test('protocol 2, plain and with compressed data (ENCODED_WRITE)', async () => {
    const v2 = await sendToFile(join(dir, 'v2.bin'), ['--proto', '2', s1]);
    const plain = parseAll(v2);
    assert.equal(plain.summary.version, 2);
    assert.equal(plain.summary.header.uuid, uuid1);
    assert.ok(plain.commands.some((c) => c.name === 'WRITE' && c.length > 65536), 'v2 writes exceed the v1 64 KiB');

    const v2c = await sendToFile(join(dir, 'v2c.bin'), ['--proto', '2', '--compressed-data', s1]);
    const compressed = parseAll(v2c);
    assert.equal(compressed.summary.version, 2);
    assert.ok(compressed.commands.some((c) => c.name === 'ENCODED_WRITE'), 'compressed extents go as ENCODED_WRITE');
    assert.ok(v2c.length < v2.length);
  });

  await t.test('btrfs send piped through SendStreamCheck', async () => {
    const proc = execa('btrfs', ['send', '-q', '-p', s1, s2], { buffer: false, stdout: 'pipe' });
    const check = new SendStreamCheck();
    let bytes = 0;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        callback();
      },
    });
    await Promise.all([pipeline(proc.stdout, check, sink), proc]);
    assert.equal((await check.header).uuid, uuid2);
    assert.equal(check.summary?.bytes, bytes);
  });

  await t.test('a real stream cut short is truncated, wherever the cut', () => {
    for (const cut of [0, 1, 16, 17, 18, 60, Math.floor(full.length / 3), Math.floor(full.length / 2), full.length - 10, full.length - 1]) {
      const err = failureOf(full.subarray(0, cut));
      assert.equal(err.code, 'sendstream_truncated', `cut at ${cut}`);
      assert.equal(err.details.offset, cut);
    }
  });

  await t.test('a real stream with one byte changed in the middle fails its CRC', () => {
    const middle = Math.floor(full.length / 2);
    const around = parseAll(full).commands.find((c) => c.offset <= middle && middle < c.offset + 10 + c.length);
    assert.ok(around !== undefined);
    const damaged = Buffer.from(full);
    const at = around.offset + 10 + Math.floor(around.length / 2);
    damaged[at]! ^= 0xff;
    const err = failureOf(damaged);
    assert.equal(err.code, 'sendstream_crc');
    assert.equal(err.details.offset, around.offset);
    assert.equal(err.details.commandIndex, around.index);
  });

  await t.test('a real stream followed by itself is a second stream', () => {
    const err = failureOf(Buffer.concat([full, full]));
    assert.equal(err.code, 'sendstream_second_stream');
    assert.equal(err.details.offset, full.length);
  });

  await t.test('btrfs send of two subvolumes: two streams, or with -e one stream with two subvolumes; both refused', async () => {
    const two = await sendToFile(join(dir, 'two.bin'), [s1, s2]);
    assert.equal(failureOf(two).code, 'sendstream_second_stream');
    const joined = await sendToFile(join(dir, 'joined.bin'), ['-e', s1, s2]);
    assert.equal(failureOf(joined).code, 'sendstream_second_subvolume');
  });

  if (process.env.SNAPFERRY_WRITE_SENDSTREAM_FIXTURES === '1') await writeFixtures(mnt, dir);
});

/** Tiny real streams for test/wire/sendstream-fixtures.test.ts, which runs without root. */
async function writeFixtures(mnt: string, dir: string): Promise<void> {
  const tiny = join(mnt, 'tiny');
  await btrfs('subvolume', 'create', tiny);
  await writeFile(join(tiny, 'hello.txt'), 'hello, snapferry\n');
  await writeFile(join(tiny, 'text.txt'), 'compressible line of text\n'.repeat(400));
  await execa('sync');
  await btrfs('subvolume', 'snapshot', '-r', tiny, join(mnt, 'tiny-1'));
  await writeFile(join(tiny, 'hello.txt'), 'hello again\n', { flag: 'a' });
  await execa('sync');
  await btrfs('subvolume', 'snapshot', '-r', tiny, join(mnt, 'tiny-2'));
  const out = join(import.meta.dirname, 'fixtures-sendstream');
  await mkdir(out, { recursive: true });
  const streams: Record<string, string[]> = {
    'full-v1.bin': [join(mnt, 'tiny-1')],
    'incremental-v1.bin': ['-p', join(mnt, 'tiny-1'), join(mnt, 'tiny-2')],
    'full-v2-compressed.bin': ['--proto', '2', '--compressed-data', join(mnt, 'tiny-1')],
  };
  for (const [name, args] of Object.entries(streams)) await writeFile(join(out, name), await sendToFile(join(dir, name), args));
  const expected = {
    made: `${(await btrfs('--version')).trim()}, kernel ${(await execa('uname', ['-r'])).stdout.trim()}, mount -o compress=zstd`,
    'tiny-1': await subvolumeUuid(join(mnt, 'tiny-1')),
    'tiny-2': await subvolumeUuid(join(mnt, 'tiny-2')),
  };
  await writeFile(join(out, 'expected.json'), `${JSON.stringify(expected, null, 2)}\n`);
}
