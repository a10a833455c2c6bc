/**
 * The send-stream UUID rewrite (core/wire/sendstream-uuids.ts): on hand-made streams, exactly the UUIDs btrfs receive
 * resolves change, each rewritten command's CRC32C is right again (checked by the parser, which has its own CRC
 * check), everything else is byte-identical, and chunking changes nothing. Pure and rootless (it is what
 * `npm run mutate uuids` runs); what real btrfs receive makes of a rewritten stream is test/btrfs/receive-uuids.test.ts.
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
import { SendStreamBuilder } from '../fixtures/send-streams.ts';
import { command, streamHeader, tlv, u64, uuidBytes } from './sendstream-builder.ts';

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

// --- each rule on its own ----------------------------------------------------------------------------------------

const header = streamHeader(1);
const subvolA = command(SendCmd.SUBVOL, tlv(SendAttr.PATH, 'snap'), tlv(SendAttr.UUID, uuidBytes(A)), tlv(SendAttr.CTRANSID, u64(10)));
const chmod = (p: string) => command(SendCmd.CHMOD, tlv(SendAttr.PATH, p), tlv(SendAttr.MODE, u64(0o644)));
const endCmd = command(SendCmd.END);

/** The rewriter's output, one entry per piece it pushed for each input chunk (in order). */
async function pieces(chunks: Buffer[], m: SendUuidMap = map): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const rewriter = new SendStreamUuidRewriter(m);
  await pipeline(Readable.from(chunks), rewriter, new Writable({ write(c: Buffer, _e, cb) { out.push(c); cb(); } }));
  return out;
}

async function rejection(chunks: Buffer[]): Promise<SendStreamError> {
  try {
    await pieces(chunks);
  } catch (err) {
    assert.ok(err instanceof SendStreamError, String(err));
    return err;
  }
  throw new Error('the stream was not refused');
}

test('rewriteCommandUuids: one command that names no UUID comes back as the same buffer; a UUID command as a new one', () => {
  const one = chmod('f');
  assert.equal(rewriteCommandUuids(one, 1, () => OTHER), one);
  const rewritten = rewriteCommandUuids(subvolA, 1, map);
  assert.notEqual(rewritten, subvolA);
  assert.ok(rewritten.includes(uuidBytes(TO[A]!)));
  assert.ok(subvolA.includes(uuidBytes(A)), 'the original is left as it was');
});

test('only 16-byte UUID attributes of the UUID commands are mapped: a 16-byte PATH is not, a UUID of another length is left alone', () => {
  const path16 = 'abcdefghijklmnop';
  const cmd = command(SendCmd.SUBVOL, tlv(SendAttr.PATH, path16), tlv(SendAttr.UUID, uuidBytes(A)), tlv(SendAttr.CTRANSID, u64(10)));
  const seen: string[] = [];
  const out = rewriteCommandUuids(cmd, 1, (u) => (seen.push(u), map(u)));
  assert.deepEqual(seen, [A], 'the map is asked about the UUID only');
  assert.ok(out.includes(Buffer.from(path16)), 'the PATH is as it was');
  const short = command(SendCmd.SUBVOL, tlv(SendAttr.PATH, 'snap'), tlv(SendAttr.UUID, uuidBytes(A).subarray(0, 15)), tlv(SendAttr.CTRANSID, u64(10)));
  assert.deepEqual(rewriteCommandUuids(short, 1, () => assert.fail('a 15-byte UUID is not mapped')), short);
});

test('a map that gives something other than a lowercase UUID is a bug, and says so', () => {
  for (const bad of [`x${TO[A]}`, `${TO[A]}x`, TO[A]!.toUpperCase(), '']) {
    assert.throws(() => rewriteCommandUuids(subvolA, 1, () => bad), (err: Error) => err.message.includes(`gave ${JSON.stringify(bad)}`), JSON.stringify(bad));
  }
});

test('a chunk of commands that name no UUID goes on as one piece, a view of the chunk itself, even when it ends just after a header', async () => {
  const body = Buffer.concat([chmod('a'), chmod('b'), chmod('c')]);
  const cut = body.length - (chmod('c').length - 10); // the third command's header ends the chunk
  const second = body.subarray(0, cut);
  const out = await pieces([Buffer.concat([header, subvolA]), second, Buffer.concat([body.subarray(cut), endCmd])]);
  assert.equal(out.length, 4, 'the stream header, the rewritten SUBVOL, and one piece for each later chunk');
  assert.equal(out[2]!.buffer, second.buffer, 'passed as a view, not copied');
  assert.equal(out[2]!.length, second.length);
});

test('after END everything passes as it came, even bytes that look like a UUID command', async () => {
  const raw = Buffer.concat([header, subvolA, endCmd, subvolA]);
  const out = Buffer.concat(await pieces([raw]));
  assert.deepEqual(out.subarray(header.length + subvolA.length), Buffer.concat([endCmd, subvolA]));
});

test('a command that names no UUID is not judged here, whatever its CRC, and may be longer than any UUID command could be', async () => {
  const bad = chmod('f');
  bad[bad.length - 1] = bad[bad.length - 1]! ^ 1;
  const big = command(SendCmd.WRITE, tlv(SendAttr.PATH, 'f'), tlv(SendAttr.FILE_OFFSET, u64(0)));
  big.writeUInt32LE(3 * 1024 * 1024, 0); // claims more than SEND_MAX_COMMAND_LENGTH; only its header is sent
  const raw = Buffer.concat([header, subvolA, bad, endCmd]);
  const ones = [...raw].map((b) => Buffer.from([b]));
  assert.deepEqual(Buffer.concat(await pieces(ones)).subarray(header.length + subvolA.length), Buffer.concat([bad, endCmd]));
  const head = Buffer.concat([header, subvolA, big.subarray(0, 10)]);
  assert.deepEqual(Buffer.concat(await pieces([head, Buffer.alloc(3 * 1024 * 1024)])).length, head.length + 3 * 1024 * 1024);
});

test('where a stream may end: between commands (END or not is the parser\'s to judge), after a zero-length command; not inside one', async () => {
  const emptyUtimes = command(SendCmd.UTIMES);
  const emptySubvol = command(SendCmd.SUBVOL);
  for (const ok of [Buffer.concat([header, subvolA]), Buffer.concat([header, subvolA, emptyUtimes]), Buffer.concat([header, emptySubvol])]) {
    assert.equal(Buffer.concat(await pieces([ok])).length, ok.length);
  }
  const raw = Buffer.concat([header, subvolA, chmod('f')]);
  for (const at of [0, 5, header.length + 4, header.length + 12, raw.length - 3]) {
    const err = await rejection([raw.subarray(0, at)].filter((b) => b.length > 0));
    assert.equal(err.code, 'sendstream_truncated');
    assert.equal(err.details.offset, at);
    assert.match(err.message, new RegExp(`byte ${at}\\b`));
  }
});

test('a bad CRC and an oversized UUID command are refused at the command\'s own offset, however the stream is cut', async () => {
  const before = Buffer.concat([header, chmod('x')]);
  const bad = Buffer.from(subvolA);
  bad[bad.length - 1] = bad[bad.length - 1]! ^ 1;
  const huge = Buffer.from(subvolA.subarray(0, 10));
  huge.writeUInt32LE(2 * 1024 * 1024 + 1, 0);
  for (const [cmd, code] of [[bad, 'sendstream_crc'], [huge, 'sendstream_too_large']] as const) {
    const raw = Buffer.concat([before, cmd]);
    for (const chunk of [1, 7, raw.length]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < raw.length; i += chunk) chunks.push(raw.subarray(i, i + chunk));
      const err = await rejection(chunks);
      assert.equal(err.code, code, `${code}, chunks of ${chunk}`);
      assert.equal(err.details.offset, before.length, `${code}, chunks of ${chunk}`);
      assert.match(err.message, new RegExp(`byte ${before.length}\\b`));
    }
  }
  // Exactly the largest a command may be is not too large: only cut short here.
  const largest = Buffer.from(subvolA.subarray(0, 10));
  largest.writeUInt32LE(2 * 1024 * 1024, 0);
  assert.equal((await rejection([Buffer.concat([before, largest])])).code, 'sendstream_truncated');
});
