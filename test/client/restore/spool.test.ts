import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FrameEncoder, FrameParser, MIN_CHUNK_SIZE } from '../../../core/wire/index.ts';
import { RestoreSpool, type SpoolIdentity } from '../../../client/restore/spool.ts';
import { downloadInto } from '../../../client/restore/http.ts';
import { ServerApi } from '../../../client/http/api.ts';
import type { Transport } from '../../../client/http/transport.ts';
import { RESTORE_HEADERS } from '../../../core/protocol.ts';

const CHUNK = MIN_CHUNK_SIZE;
const identity: SpoolIdentity = { client: null, volume: 'v', snapshot: 's1', uuid: 'u', parentUuid: null, chunkSize: CHUNK };

async function framed(raw: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (parts.push(c), cb()) });
  await pipeline(Readable.from([raw]), new FrameEncoder({ chunkSize: CHUNK, level: 1 }), sink);
  return Buffer.concat(parts);
}

/** Feeds `wire` (from the spool's position on) through a parser into the spool, `stopAfter` frames at most. */
async function feed(spool: RestoreSpool, wire: Buffer, stopAfter = Infinity): Promise<void> {
  const parser = new FrameParser({ chunkSize: CHUNK, state: spool.state });
  let at = 0;
  let n = 0;
  for (const frame of parser.push(wire.subarray(spool.state.wireOffsetVerified))) {
    if (n++ >= stopAfter) return;
    const length = frame.wireEnd - frame.wireStart;
    await spool.append(wire.subarray(spool.state.wireOffsetVerified, spool.state.wireOffsetVerified + length), frame);
    at += length;
  }
  assert.ok(at > 0);
}

async function tmpDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-spool-test-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return path.join(dir, '.snapferry-restore-u');
}

test('frames spooled in two runs make the whole framed stream, and the state resumes where the last run stopped', async (t) => {
  const dir = await tmpDir(t);
  const raw = crypto.randomBytes(5 * CHUNK + 1000);
  const wire = await framed(raw);
  const first = await RestoreSpool.open(dir, identity);
  assert.equal(first.discarded, null);
  await feed(first.spool, wire, 3);
  assert.equal(first.spool.state.framesVerified, 3);
  await first.spool.close();

  const again = await RestoreSpool.open(dir, identity);
  assert.equal(again.discarded, null);
  assert.deepEqual({ ...again.spool.state, chain: null }, { ...first.spool.state, chain: null });
  assert.ok(again.spool.state.chain.equals(first.spool.state.chain));
  await feed(again.spool, wire);
  assert.equal(again.spool.state.ended, true);
  assert.equal(again.spool.state.framesVerified, 6);
  assert.equal(again.spool.state.rawOffset, raw.length);
  assert.ok((await fs.readFile(again.spool.framesFile)).equals(wire));
  await again.spool.remove();
  await assert.rejects(fs.stat(dir), /ENOENT/);
});

test('bytes past the last index record are kept as the start of the next frame, a torn record is cut off at open', async (t) => {
  const dir = await tmpDir(t);
  const wire = await framed(crypto.randomBytes(4 * CHUNK));
  const { spool } = await RestoreSpool.open(dir, identity);
  await feed(spool, wire, 2);
  const state = spool.state;
  await spool.close();
  // A crash after the third frame's bytes but inside its index record.
  await fs.appendFile(path.join(dir, 'frames'), wire.subarray(state.wireOffsetVerified, state.wireOffsetVerified + 5000));
  await fs.appendFile(path.join(dir, 'frames.index'), Buffer.alloc(20, 7));
  const reopened = (await RestoreSpool.open(dir, identity)).spool;
  assert.equal(reopened.state.framesVerified, 2);
  // What a cut (or a crash before the record) left of frame 2: the next download asks the server for the rest only.
  assert.deepEqual(await reopened.partial(), wire.subarray(state.wireOffsetVerified, state.wireOffsetVerified + 5000));
  assert.equal((await fs.stat(path.join(dir, 'frames.index'))).size, 2 * 64);
  await feed(reopened, wire);
  assert.ok((await fs.readFile(reopened.framesFile)).equals(wire));
  await reopened.close();
});

test('rewind keeps the first frames only, and drops the end frame', async (t) => {
  const dir = await tmpDir(t);
  const wire = await framed(crypto.randomBytes(3 * CHUNK + 10));
  const { spool } = await RestoreSpool.open(dir, identity);
  await feed(spool, wire);
  assert.equal(spool.state.ended, true);
  await spool.rewind(4);
  assert.equal(spool.state.ended, false);
  assert.equal(spool.state.framesVerified, 4);
  await spool.rewind(1);
  assert.equal(spool.state.framesVerified, 1);
  await feed(spool, wire);
  assert.ok((await fs.readFile(spool.framesFile)).equals(wire));
  await spool.close();
});

test('a spool of another stream (another parent) is started over, and says why', async (t) => {
  const dir = await tmpDir(t);
  const wire = await framed(crypto.randomBytes(2 * CHUNK));
  const { spool } = await RestoreSpool.open(dir, identity);
  await feed(spool, wire, 1);
  await spool.close();
  const other = await RestoreSpool.open(dir, { ...identity, parentUuid: 'p' });
  assert.match(other.discarded ?? '', /held v\/s1 from nothing \(full\) in chunks of \d+; this restore asks for v\/s1 from p /);
  assert.equal(other.spool.state.framesVerified, 0);
  assert.equal((await fs.stat(other.spool.framesFile)).size, 0);
  await other.spool.close();
});

test('a spool written by a restore from another address of the server is the same stream: resumed, not thrown away', async (t) => {
  const dir = await tmpDir(t);
  const wire = await framed(crypto.randomBytes(3 * CHUNK));
  const { spool } = await RestoreSpool.open(dir, identity);
  await feed(spool, wire, 2);
  await spool.close();
  // As an earlier version wrote it: with the URL it downloaded from (through a proxy, say).
  const meta = path.join(dir, 'restore.json');
  await fs.writeFile(meta, JSON.stringify({ ...identity, server: 'https://proxy.example:8443/snapferry/' }));
  const again = await RestoreSpool.open(dir, identity);
  assert.equal(again.discarded, null);
  assert.equal(again.spool.state.framesVerified, 2);
  await again.spool.close();
});

test('a tail of a whole frame or more past the last record is no part of a frame: cut off at open', async (t) => {
  const dir = await tmpDir(t);
  const wire = await framed(crypto.randomBytes(4 * CHUNK));
  const { spool } = await RestoreSpool.open(dir, identity);
  await feed(spool, wire, 1);
  const state = spool.state;
  await spool.close();
  await fs.appendFile(path.join(dir, 'frames'), Buffer.alloc(72 + CHUNK, 1));
  const reopened = (await RestoreSpool.open(dir, identity)).spool;
  assert.equal((await reopened.partial()).length, 0);
  assert.equal((await fs.stat(path.join(dir, 'frames'))).size, state.wireOffsetVerified);
  await reopened.close();
});

test('keepPartial keeps what a cut brought of the next frame, and the frame appended whole replaces it', async (t) => {
  const dir = await tmpDir(t);
  const wire = await framed(crypto.randomBytes(3 * CHUNK));
  const { spool } = await RestoreSpool.open(dir, identity);
  await feed(spool, wire, 1);
  const at = spool.state.wireOffsetVerified;
  await spool.keepPartial(wire.subarray(at, at + 1234));
  assert.deepEqual(await spool.partial(), wire.subarray(at, at + 1234));
  await feed(spool, wire);
  assert.ok((await fs.readFile(spool.framesFile)).equals(wire));
  assert.equal((await spool.partial()).length, 0);
  await spool.close();
});

test('a frame whose append fails (a full disk) leads what the download keeps: the rest goes on from its bytes, not the next frame\'s', async (t) => {
  const dir = await tmpDir(t);
  // Frames that compress well: frame 2 and those after it are less than one frame of the largest size together.
  const wire = await framed(Buffer.alloc(4 * CHUNK, 'snapferry keeps what a download brought '));
  // The whole stream in one piece: when frame 2 cannot be written, frame 3's bytes are already in hand.
  const transport = {
    proxy: null,
    fetch: async () => new Response(wire, { headers: { [RESTORE_HEADERS.uuid]: 'u', [RESTORE_HEADERS.parentUuid]: 'none', [RESTORE_HEADERS.chunkSize]: String(CHUNK), [RESTORE_HEADERS.fromFrame]: '0' } }),
    close: async () => undefined,
  } as unknown as Transport;
  const http = { api: new ServerApi({ server: 'http://s/', transport }), headers: {} };
  const { spool } = await RestoreSpool.open(dir, identity);
  const append = spool.append.bind(spool);
  spool.append = async (bytes, frame) => {
    if (frame.index === 2) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    return append(bytes, frame);
  };
  await assert.rejects(downloadInto(spool, http, { volume: 'v', snapshot: 's1', parentUuid: null, stallMs: 5000, sealing: null }), { code: 'ENOSPC' });
  assert.equal(spool.state.framesVerified, 2);
  const kept = await spool.partial();
  const from = spool.state.wireOffsetVerified;
  assert.ok(kept.length > 0, 'the frame that was not written is kept as the part of the next');
  assert.ok(kept.equals(wire.subarray(from, from + kept.length)), 'what is kept is the stream from the verified frames on');
  await spool.close();
});

test('a spool folder that is a symlink, another user\'s, or open to others is refused, and nothing is written through it; a file in it that is a symlink is not followed', async (t) => {
  const dir = await tmpDir(t);
  const elsewhere = `${dir}-elsewhere`;
  await fs.mkdir(elsewhere);
  await fs.symlink(elsewhere, dir);
  await assert.rejects(RestoreSpool.open(dir, identity), (err: Error & { code?: string }) => err.code === 'restore_target_unsafe' && /not a folder/.test(err.message));
  assert.deepEqual(await fs.readdir(elsewhere), []);
  await fs.rm(dir);

  await fs.mkdir(dir, { mode: 0o700 });
  // Worded as DEST_DIR's refusal (target-owner.ts), with this folder's own remedy.
  await fs.chmod(dir, 0o777);
  await assert.rejects(RestoreSpool.open(dir, identity), new RegExp(`: the restore's spool ${dir} is writable by every user, who can put a symlink where the restore writes; .*: remove it \\(rm -r ${dir}\\) and restore again$`));
  // The sticky bit keeps others from renaming an entry, not from making one of their own in the folder.
  await fs.chmod(dir, 0o1777);
  await assert.rejects(RestoreSpool.open(dir, identity), /is writable by every user, who can put a symlink/);
  await fs.chmod(dir, 0o770);
  await assert.rejects(RestoreSpool.open(dir, identity), /is writable by group \d+, who can put a symlink/);
  if (process.geteuid?.() === 0) {
    await fs.chmod(dir, 0o700);
    await fs.chown(dir, 65534, 65534);
    await assert.rejects(RestoreSpool.open(dir, identity), /is owned by uid 65534, who can put a symlink in it/);
    await fs.chown(dir, 0, 0);
  }

  await fs.chmod(dir, 0o700);
  // A spool of this stream, so that the next open resumes it and opens its files as they are.
  await (await RestoreSpool.open(dir, identity)).spool.close();
  const victim = path.join(elsewhere, 'victim');
  await fs.writeFile(victim, 'keep me');
  await fs.rm(path.join(dir, 'frames'));
  await fs.symlink(victim, path.join(dir, 'frames'));
  await assert.rejects(RestoreSpool.open(dir, identity), /ELOOP/);
  assert.equal(await fs.readFile(victim, 'utf8'), 'keep me');
});
