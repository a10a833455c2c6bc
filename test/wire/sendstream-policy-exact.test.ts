/**
 * The policy judges what btrfs receive applies, not what the bytes look like (issue 17, item 2). Each bad stream
 * here breaks ONE rule only, and next to it stands the nearest stream that passes, so that deleting or loosening any
 * single rule fails a test: a MODE above 2^53 (btrfs-progs keeps its low 32 bits), an xattr name cut at its NUL, a
 * path whose only fault is a NUL, a name of 255 bytes against 256, compression 1 and 7 against 0 and 8, each
 * ENCODED_WRITE size missing on its own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SendStreamParser } from '../../core/wire/sendstream-parser.ts';
import { SendStreamPolicyCheck, SendStreamPolicyError, unsafePathReason } from '../../core/wire/sendstream-policy.ts';
import type { SendStreamPolicy } from '../../core/wire/sendstream-policy.ts';
import { sendAttributeBigU64, sendAttributeU64 } from '../../core/wire/sendstream-attributes.ts';
import { SendAttr, SendCmd } from '../../core/wire/sendstream-format.ts';
import { SendStreamBuilder, randomUuid } from '../fixtures/send-streams.ts';
import { dataTlv, tlv, u32, u64 } from './sendstream-builder.ts';

const SELF = randomUuid();
const REFUSE: SendStreamPolicy = { parentUuid: null, cloneSources: [], allowDevices: false, allowSetuid: false };
const ALLOW: SendStreamPolicy = { ...REFUSE, allowDevices: true, allowSetuid: true };
const HIGH = 1n << 60n;
const S_IFCHR = 0o020000n;
const S_IFBLK = 0o060000n;
const S_IFIFO = 0o010000n;

/** Parses `stream` with the policy on every command; the policy's refusal, or undefined when all passes. */
function judge(stream: Buffer, policy: SendStreamPolicy): SendStreamPolicyError | undefined {
  const rules = new SendStreamPolicyCheck(policy);
  const parser = new SendStreamParser({ onCommand: (c) => rules.visit(c) });
  try {
    parser.push(stream);
    parser.end();
    return undefined;
  } catch (err) {
    if (err instanceof SendStreamPolicyError) return err;
    throw err;
  }
}

function refused(stream: Buffer, policy: SendStreamPolicy, code: string): SendStreamPolicyError {
  const err = judge(stream, policy);
  assert.ok(err, `expected ${code}, the stream passed`);
  assert.equal(err.code, code, err.message);
  assert.equal(err.retryable, false);
  // Details go out as JSON: a bigint there would make the error answer itself fail.
  assert.doesNotThrow(() => JSON.stringify(err.toJSON()));
  return err;
}

const stream = (build: (b: SendStreamBuilder) => SendStreamBuilder, version = 1): Buffer =>
  build(new SendStreamBuilder(version).subvol('snap', SELF)).end().build();

const chmod = (mode: bigint) => stream((b) => b.mkfileAt('f').cmd(SendCmd.CHMOD, tlv(SendAttr.PATH, 'f'), tlv(SendAttr.MODE, u64(mode))));
const mknod = (mode: bigint, rdev = 0x103n) =>
  stream((b) =>
    b.cmd(SendCmd.MKNOD, tlv(SendAttr.PATH, 'n'), tlv(SendAttr.INO, u64(300)), tlv(SendAttr.MODE, u64(mode)), tlv(SendAttr.RDEV, u64(rdev))),
  );
const xattr = (cmd: number, name: Buffer | string) =>
  stream((b) => b.mkfileAt('f').cmd(cmd, tlv(SendAttr.PATH, 'f'), tlv(SendAttr.XATTR_NAME, name), ...(cmd === SendCmd.SET_XATTR ? [tlv(SendAttr.XATTR_DATA, Buffer.alloc(20, 1))] : [])));

test('u64 attributes are read exactly: above 2^53 is a value, not an absence', () => {
  const attrs = [{ type: SendAttr.MODE, value: u64(0xffff_ffff_ffff_ffffn) }, { type: SendAttr.SIZE, value: u64(2n ** 53n + 1n) }];
  assert.equal(sendAttributeBigU64(attrs, SendAttr.MODE), 0xffff_ffff_ffff_ffffn);
  assert.equal(sendAttributeBigU64(attrs, SendAttr.SIZE), 2n ** 53n + 1n);
  assert.equal(sendAttributeBigU64([{ type: SendAttr.MODE, value: u32(0o755) }], SendAttr.MODE), undefined, 'btrfs receive needs 8 bytes');
  assert.equal(sendAttributeBigU64(attrs, SendAttr.UID), undefined);
  // The number reader is for values that must fit a number; it stays undefined above 2^53, and no rule uses it.
  assert.equal(sendAttributeU64(attrs, SendAttr.SIZE), undefined);
  assert.equal(sendAttributeU64([{ type: SendAttr.SIZE, value: u64(2n ** 53n - 1n) }], SendAttr.SIZE), 2 ** 53 - 1);
});

test('CHMOD: a MODE above 2^53 is judged by the low 32 bits btrfs receive gives chmod(2)', () => {
  const err = refused(chmod(HIGH | 0o4755n), REFUSE, 'sendstream_setuid_refused');
  assert.equal(err.details.mode, 0o4755);
  assert.equal(err.details.modeAttribute, (HIGH | 0o4755n).toString());
  assert.match(err.message, /mode 4755: its MODE is 1000+4755, of which btrfs receive applies the low 32 bits/);
  refused(chmod(HIGH | 0o2755n), REFUSE, 'sendstream_setuid_refused');
  refused(chmod((1n << 32n) | 0o4755n), REFUSE, 'sendstream_setuid_refused');
  refused(chmod(0xffff_ffff_ffff_ffffn), REFUSE, 'sendstream_setuid_refused');
  // The harmless neighbours: the same high bits without setuid/setgid, and setuid bits only above bit 31.
  assert.equal(judge(chmod(HIGH | 0o755n), REFUSE), undefined);
  assert.equal(judge(chmod(0o4755n << 32n), REFUSE), undefined);
  assert.equal(judge(chmod(HIGH | 0o4755n), ALLOW), undefined, 'allowed when the policy allows setuid files');
});

test('MKNOD: a MODE above 2^53 is judged by the file type btrfs receive gives mknod(2), and only devices count', () => {
  for (const type of [S_IFCHR, S_IFBLK]) {
    const err = refused(mknod(HIGH | type), REFUSE, 'sendstream_device_refused');
    assert.equal(err.details.mode, Number(type));
    assert.equal(judge(mknod(HIGH | type), ALLOW), undefined);
    // An rdev above 32 bits does not make a device harmless to the policy.
    refused(mknod(type | 0o600n, 1n << 40n), REFUSE, 'sendstream_device_refused');
  }
  assert.equal(judge(mknod(HIGH | S_IFIFO), REFUSE), undefined, 'a FIFO');
  assert.equal(judge(mknod(S_IFCHR << 32n), REFUSE), undefined, 'S_IFCHR above bit 31 is dropped: a regular file');
  // btrfs receive passes mknod only `mode & S_IFMT`: a FIFO's setuid bits never reach the inode (a CHMOD would).
  assert.equal(judge(mknod(S_IFIFO | 0o6755n), REFUSE), undefined);
});

test('xattr names: a NUL is refused in every mode, since btrfs receive would cut the name there', () => {
  const hidden = Buffer.from('security.capability\0x', 'latin1');
  for (const policy of [REFUSE, ALLOW]) {
    const err = refused(xattr(SendCmd.SET_XATTR, hidden), policy, 'sendstream_unsafe_name');
    assert.match(err.message, /extended attribute of "f" "security\.capability\\u0000x", which holds a NUL byte/);
    refused(xattr(SendCmd.SET_XATTR, Buffer.from('user.a\0b')), policy, 'sendstream_unsafe_name');
    refused(xattr(SendCmd.REMOVE_XATTR, Buffer.from('user.a\0b')), policy, 'sendstream_unsafe_name');
    assert.equal(judge(xattr(SendCmd.SET_XATTR, 'user.ab'), policy), undefined);
    assert.equal(judge(xattr(SendCmd.REMOVE_XATTR, 'security.capability'), policy), undefined, 'removing capabilities gives none');
  }
  refused(xattr(SendCmd.SET_XATTR, 'security.capability'), REFUSE, 'sendstream_setuid_refused');
  assert.equal(judge(xattr(SendCmd.SET_XATTR, 'security.capability'), ALLOW), undefined);
  // Names are compared as the kernel does: exactly, case and all.
  assert.equal(judge(xattr(SendCmd.SET_XATTR, 'security.capabilityx'), REFUSE), undefined);
  assert.equal(judge(xattr(SendCmd.SET_XATTR, 'security.Capability'), REFUSE), undefined);
});

test('paths: a NUL alone is enough to refuse one (btrfs-progs turns "..\\0x" into "..")', () => {
  const nulOnly = Buffer.from('..\0x', 'latin1');
  assert.equal(unsafePathReason(nulOnly), 'it contains a NUL byte');
  assert.equal(unsafePathReason(Buffer.from('..x')), undefined, 'the same path without its NUL is a plain name');
  assert.equal(unsafePathReason(Buffer.from('a\0')), 'it contains a NUL byte');
  refused(stream((b) => b.write(nulOnly, Buffer.from('x'))), ALLOW, 'sendstream_unsafe_path');
  assert.equal(judge(stream((b) => b.mkfileAt('..x').write('..x', Buffer.from('x'))), ALLOW), undefined);
});

test('the subvolume name: 255 bytes pass, 256 are refused', () => {
  const named = (name: string) => new SendStreamBuilder().subvol(name, SELF).end().build();
  assert.equal(judge(named('x'.repeat(255)), ALLOW), undefined);
  const err = refused(named('x'.repeat(256)), ALLOW, 'sendstream_unsafe_name');
  assert.match(err.message, /256 bytes long, over btrfs's 255/);
});

/** An ENCODED_WRITE as btrfs send writes one, with `change` applied to its attributes (undefined: left out). */
function encoded(change: Partial<Record<'fileLen' | 'len' | 'offset' | 'compression' | 'encryption', bigint | number | undefined>> = {}): Buffer {
  const v = { fileLen: 4096n, len: 4096n, offset: 0n, compression: 2, encryption: 0, ...change };
  const attrs = [tlv(SendAttr.PATH, 'f'), tlv(SendAttr.FILE_OFFSET, u64(0))];
  if (v.fileLen !== undefined) attrs.push(tlv(SendAttr.UNENCODED_FILE_LEN, u64(v.fileLen)));
  if (v.len !== undefined) attrs.push(tlv(SendAttr.UNENCODED_LEN, u64(v.len)));
  if (v.offset !== undefined) attrs.push(tlv(SendAttr.UNENCODED_OFFSET, u64(v.offset)));
  if (v.compression !== undefined) attrs.push(tlv(SendAttr.COMPRESSION, u32(Number(v.compression))));
  if (v.encryption !== undefined) attrs.push(tlv(SendAttr.ENCRYPTION, u32(Number(v.encryption))));
  attrs.push(dataTlv(2, Buffer.alloc(100, 7)));
  return stream((b) => b.mkfileAt('f').cmd(SendCmd.ENCODED_WRITE, ...attrs), 2);
}

test('ENCODED_WRITE: each of UNENCODED_LEN, UNENCODED_FILE_LEN, UNENCODED_OFFSET and COMPRESSION is needed on its own', () => {
  assert.equal(judge(encoded(), REFUSE), undefined, 'the control passes');
  for (const missing of ['len', 'fileLen', 'offset', 'compression'] as const) {
    const err = refused(encoded({ [missing]: undefined }), ALLOW, 'sendstream_bad_encoded_write');
    assert.match(err.message, /lacks one of/, missing);
  }
  assert.equal(judge(encoded({ encryption: undefined }), REFUSE), undefined, 'ENCRYPTION may be left out (none)');
});

test('ENCODED_WRITE: sizes above 2^53 are values, refused by the size rules, with JSON-safe details', () => {
  const huge = 2n ** 53n + 2n;
  const len = refused(encoded({ len: huge }), ALLOW, 'sendstream_bad_encoded_write');
  assert.match(len.message, /UNENCODED_LEN is 9007199254740994 bytes, over the 131072/);
  assert.equal(len.details.unencodedLen, huge.toString());
  const offset = refused(encoded({ offset: huge }), ALLOW, 'sendstream_bad_encoded_write');
  assert.match(offset.message, /UNENCODED_OFFSET 9007199254740994 \+ UNENCODED_FILE_LEN 4096 runs past/);
  const fileLen = refused(encoded({ fileLen: 0xffff_ffff_ffff_ffffn }), ALLOW, 'sendstream_bad_encoded_write');
  assert.match(fileLen.message, /UNENCODED_FILE_LEN 18446744073709551615 runs past/, 'no u64 wrap-around');
  // The edges that pass: a whole 128 KiB extent, read to its last byte.
  assert.equal(judge(encoded({ len: 131072n, offset: 4096n, fileLen: 131072n - 4096n }), ALLOW), undefined);
  refused(encoded({ len: 131073n, offset: 0n, fileLen: 4096n }), ALLOW, 'sendstream_bad_encoded_write');
  refused(encoded({ len: 8192n, offset: 4097n, fileLen: 4096n }), ALLOW, 'sendstream_bad_encoded_write');
});

test('ENCODED_WRITE: compression 1 (zlib) to 7 (lzo 64k) pass; 0 and 8 are refused', () => {
  for (const compression of [1, 2, 7]) assert.equal(judge(encoded({ compression }), ALLOW), undefined, `compression ${compression}`);
  for (const compression of [0, 8]) {
    const err = refused(encoded({ compression }), ALLOW, 'sendstream_bad_encoded_write');
    assert.match(err.message, new RegExp(`COMPRESSION is ${compression}, not one btrfs knows`));
  }
  refused(encoded({ encryption: 1 }), ALLOW, 'sendstream_bad_encoded_write');
});
