// How push names a stream's subvolume (core/wire/stream-naming.ts, with stream-rename.ts's renamer): after its UUID,
// so that a snapshot renamed here (mv) frames the same bytes as before and a resume after the rename finds every
// frame the server holds; and, for an upload an older snapferry began under the directory's name, which naming the
// server's frame 0 was made with. Tested on hand-made streams; test/e2e/resume-rename.test.ts runs it on real btrfs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { deriveKeys } from '../../core/crypto/keys.ts';
import { CHAIN_ZERO, chainStep, sha256 } from '../../core/wire/chain.ts';
import { sealedFrameHash, streamIdentity, type FrameSealing } from '../../core/wire/frame-seal.ts';
import { SendStreamCheck } from '../../core/wire/sendstream-check.ts';
import { FirstCommandRenamer, renameFirstCommand, type NameChooser } from '../../core/wire/stream-rename.ts';
import { firstReadSize, resumeNaming, stableNaming, stableStreamName } from '../../core/wire/stream-naming.ts';
import { SendStreamBuilder, frameStream } from '../fixtures/send-streams.ts';
import { slices } from './frame-helpers.ts';

const CHUNK = 64 * 1024;
const UUID = '3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b';
const PARENT = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

/** A send stream of `uuid` whose first command names `dir`, three chunks long (the same content whatever `dir` is). */
function streamOf(dir: string, parent: string | null = null, uuid = UUID): Buffer {
  const b = new SendStreamBuilder(1);
  if (parent === null) b.subvol(dir, uuid);
  else b.snapshot(dir, uuid, parent);
  // Writes of 32 KiB (a version 1 attribute holds at most 64 KiB), some 2.5 chunks in all.
  b.file('data', Buffer.alloc(32768, 7));
  for (let at = 32768; at < 5 * 32768; at += 32768) b.write('data', Buffer.alloc(32768, at / 32768), at);
  return b.end().build();
}

/** `raw` through a FirstCommandRenamer with `naming`, fed in `pieces`-byte reads. */
async function renamed(raw: Buffer, naming: string | NameChooser, pieces = raw.length): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of Readable.from(slices(raw, [pieces])).pipe(new FirstCommandRenamer(naming))) out.push(b as Buffer);
  return out;
}

const chainAfterFrameZero = (raw: Buffer, hash: (chunk: Buffer) => Buffer = sha256): string =>
  chainStep(CHAIN_ZERO, hash(raw.subarray(0, CHUNK))).toString('hex');

test('named after its UUID, a snapshot frames the same bytes under any directory name: a rename here changes no frame', async () => {
  for (const parent of [null, PARENT]) {
    const before = Buffer.concat(await renamed(streamOf('home.20261206T014500Z', parent), stableNaming()));
    const after = Buffer.concat(await renamed(streamOf('home.20261206T014400Z-renamed', parent), stableNaming()));
    assert.ok(before.equals(after), 'the renamed snapshot makes the same stream');
    assert.deepEqual(await frameStream(before, CHUNK, 3), await frameStream(after, CHUNK, 3), 'and the same frames');
    // Still a valid stream (the command's CRC is recomputed), naming the UUID, with the same UUIDs.
    const check = new SendStreamCheck();
    for await (const _ of Readable.from([before]).pipe(check));
    const header = await check.header;
    assert.equal(header.path, stableStreamName(UUID));
    assert.equal(header.uuid, UUID);
    assert.equal(header.kind === 'snapshot' ? header.cloneUuid : null, parent);
  }
  // The bytes that were sent before (btrfs send's own name) differ: that is what made a resume after a rename start over.
  assert.ok(!streamOf('home.20261206T014500Z').equals(streamOf('home.20261206T014400Z')));
});

test('a first read shorter or longer by what the name adds keeps every chunk after it whole', async () => {
  for (const dir of ['s1', 'home.20261206T014500Z', `x${'y'.repeat(200)}`, '3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b']) {
    const raw = streamOf(dir);
    const first = firstReadSize(CHUNK, dir);
    const reads = [raw.subarray(0, first), raw.subarray(first, first + CHUNK), raw.subarray(first + CHUNK)];
    const out: Buffer[] = [];
    for await (const b of Readable.from(reads).pipe(new FirstCommandRenamer(stableNaming()))) out.push(b as Buffer);
    assert.equal(out[0]!.length, CHUNK, `${dir}: the renamed first read is one chunk`);
    assert.equal(out[1], reads[1], `${dir}: later reads pass through as they are`);
  }
});

test('the renamer decides on its lookahead across small reads, and on the whole stream when it is shorter', async () => {
  const raw = streamOf('s1');
  const seen: { bytes: number; ended: boolean }[] = [];
  const chooser = (lookahead: number): NameChooser => ({
    lookahead,
    choose: (head, ended) => {
      seen.push({ bytes: head.length, ended });
      return 'chosen';
    },
  });
  const want = renameFirstCommand(raw, 'chosen');
  assert.ok(Buffer.concat(await renamed(raw, chooser(CHUNK + 255), 999)).equals(want));
  assert.ok(seen[0]!.bytes >= CHUNK + 255 && !seen[0]!.ended, 'it waited for its lookahead, in reads of 999 bytes');
  assert.ok(Buffer.concat(await renamed(raw, chooser(raw.length * 2), 4096)).equals(want));
  assert.deepEqual(seen[1], { bytes: raw.length, ended: true }, 'a stream shorter than the lookahead: decided at its end');
  await assert.rejects(renamed(raw.subarray(0, 40), chooser(0)), { code: 'sendstream_truncated' });
  assert.throws(() => new FirstCommandRenamer('../x'), /bad name/);
  await assert.rejects(renamed(raw, { lookahead: 0, choose: () => 'a/b' }), /bad name/);
});

test('a resume finds the naming of the upload from the server\'s frame 0: stable, or an older snapferry\'s directory name', async () => {
  const stable = renameFirstCommand(streamOf('s1'), stableStreamName(UUID));
  const cases: { what: string; sent: Buffer; legacy: string[]; want: string; again?: Buffer }[] = [
    { what: 'begun by this version', sent: stable, legacy: ['old', 'new'], want: UUID },
    { what: 'begun by an older one, not renamed since', sent: streamOf('home.20261206T014500Z'), legacy: ['home.20261206T014500Z', 'home.20261206T014500Z'], want: 'home.20261206T014500Z' },
    { what: 'begun by an older one, renamed since (the upload keeps the old name)', sent: streamOf('home.20261206T014500Z'), legacy: ['home.20261206T014500Z', 'home.20261206T014400Z'], want: 'home.20261206T014500Z' },
    { what: 'begun by an older one from snapper\'s N/snapshot (uploaded as N)', sent: streamOf('snapshot'), legacy: ['42', 'snapshot'], want: 'snapshot' },
    { what: 'nothing matches (the stream changed): stable, and the resume finds where they part', sent: streamOf('other'), legacy: ['home', 'again'], want: UUID, again: stable },
  ];
  for (const c of cases) {
    // The directory is called something else again now: what btrfs send writes today does not decide.
    const naming = resumeNaming({ chunkSize: CHUNK, chain: chainAfterFrameZero(c.sent) }, c.legacy);
    const out = Buffer.concat(await renamed(streamOf('today-s-name'), naming, 10_000));
    assert.equal(naming.chosen?.name, c.want, c.what);
    assert.ok(out.equals(c.again ?? c.sent), `${c.what}: the stream is again the one the server holds`);
  }
});

test('a sealed upload\'s frame 0 is told apart by its sealed hash, and a short stream by its only chunk', async () => {
  const sealing: FrameSealing = { key: deriveKeys(Buffer.alloc(32, 5)), stream: streamIdentity(UUID, null) };
  const frameHash = sealedFrameHash(sealing, 3);
  const sent = streamOf('home.1');
  const naming = resumeNaming({ chunkSize: CHUNK, chain: chainAfterFrameZero(sent, (c) => frameHash(c, 0)), frameHash }, ['home.1']);
  assert.ok(Buffer.concat(await renamed(streamOf('home.2'), naming)).equals(sent));
  assert.equal(naming.chosen?.stable, false);

  const short = (dir: string) => new SendStreamBuilder(1).subvol(dir, UUID).file('a', Buffer.alloc(100, 1)).end().build();
  const shortNaming = resumeNaming({ chunkSize: CHUNK, chain: chainStep(CHAIN_ZERO, sha256(short('tiny'))).toString('hex') }, ['tiny']);
  assert.ok(Buffer.concat(await renamed(short('renamed'), shortNaming)).equals(short('tiny')));
});
