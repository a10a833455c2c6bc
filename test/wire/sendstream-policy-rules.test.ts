/**
 * One rule of the send-stream policy per test, each shown on both sides of its line: an input that breaks that rule
 * and no other is refused, and the nearest input that keeps it passes. So deleting or bending any one rule of
 * core/wire/sendstream-policy.ts makes a test here fail (mutation testing checks that: `npm run mutate -- policy`).
 *
 * Streams are built byte by byte (test/fixtures/send-streams.ts, with correct CRCs) and go through the public path a
 * receiver uses, SendStreamCheck with a policy, so every test holds whatever the attributes are read with (numbers in
 * details are compared through Number(), so a u64 read as a BigInt passes too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SendStreamCheck } from '../../core/wire/sendstream-check.ts';
import { SendStreamPolicyCheck, SendStreamPolicyError, type SendStreamPolicy } from '../../core/wire/sendstream-policy.ts';
import { SendAttr, SendCmd } from '../../core/wire/sendstream-format.ts';
import { SendStreamBuilder, randomUuid } from '../fixtures/send-streams.ts';
import { dataTlv, slices, tlv, u32, u64, uuidBytes } from './sendstream-builder.ts';

const SELF = randomUuid();
const PARENT = randomUuid();
const KiB = 1024;
/** Refuses everything the policy can refuse: no parent, no clone sources, no devices, no setuid. */
const STRICT: SendStreamPolicy = { parentUuid: null, cloneSources: [], allowDevices: false, allowSetuid: false };
const data = Buffer.from('payload\n');

/** Runs `bytes` through a receiver's check with `policy`; returns the failure, or undefined when the stream passes. */
async function check(bytes: Buffer, policy: SendStreamPolicy = STRICT): Promise<unknown> {
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  try {
    await pipeline(Readable.from(slices(bytes, 31)), new SendStreamCheck({ policy }), sink);
    return undefined;
  } catch (err) {
    return err;
  }
}

async function passes(bytes: Buffer, policy: SendStreamPolicy = STRICT, why?: string): Promise<void> {
  const err = await check(bytes, policy);
  assert.equal(err, undefined, `${why ?? 'expected the stream to pass'}: ${String(err)}`);
}

async function refused(bytes: Buffer, code: string, policy: SendStreamPolicy = STRICT): Promise<SendStreamPolicyError> {
  const err = await check(bytes, policy);
  assert.ok(err instanceof SendStreamPolicyError, `expected ${code}, got ${String(err)}`);
  assert.equal(err.code, code);
  assert.equal(err.retryable, false);
  return err;
}

const full = (version = 1) => new SendStreamBuilder(version).subvol('snap', SELF);
/** A stream whose only command after SUBVOL writes `path`: the path is the one thing under test. */
const writing = (path: string | Buffer) => full().write(path, data).end().build();
const named = (name: string | Buffer) => new SendStreamBuilder().subvol(name, SELF).end().build();

test('a path is refused for a NUL byte alone: btrfs receive would act on the path cut at it', async () => {
  // No "..", no leading "/": only the NUL rule can refuse these. ("..\0x" would reach btrfs receive as "..".)
  const err = await refused(writing(Buffer.from('dir\0file')), 'sendstream_unsafe_path');
  assert.match(err.message, /NUL/);
  assert.equal(err.details.attribute, 'PATH');
  await refused(writing(Buffer.from('a\0')), 'sendstream_unsafe_path');
  await passes(writing('dir/file'));
});

test('a path is refused for a leading "/" alone, not for a "/" elsewhere', async () => {
  const err = await refused(writing('/x'), 'sendstream_unsafe_path');
  assert.match(err.message, /absolute/);
  await passes(writing('x/'));
  await passes(writing('a/b/c'));
});

test('a path is refused for a ".." component alone, wherever it stands', async () => {
  for (const path of ['..', '../x', 'x/..', 'x/../y', 'x//../y']) {
    const err = await refused(writing(path), 'sendstream_unsafe_path');
    assert.match(err.message, /"\.\." component/, path);
  }
  for (const path of ['.', './x', 'x/.', '...', '..x', 'x..', '.x.', 'x/.../y', 'x./.y', '']) await passes(writing(path), STRICT, path);
});

test('every path attribute is checked on its own: PATH_TO, CLONE_PATH, and LINK\'s PATH_LINK', async () => {
  const rename = full().mkfileAt('a').cmd(SendCmd.RENAME, tlv(SendAttr.PATH, 'a'), tlv(SendAttr.PATH_TO, '../a')).end().build();
  assert.equal((await refused(rename, 'sendstream_unsafe_path')).details.attribute, 'PATH_TO');
  const clone = full().file('a', data).clone('b', 0, 4096, SELF, '../a').end().build();
  assert.equal((await refused(clone, 'sendstream_unsafe_path')).details.attribute, 'CLONE_PATH');
  const link = (target: string) =>
    full().file('a', data).cmd(SendCmd.LINK, tlv(SendAttr.PATH, 'b'), tlv(SendAttr.PATH_LINK, target)).end().build();
  const err = await refused(link('../a'), 'sendstream_unsafe_path');
  assert.equal(err.details.attribute, 'PATH_LINK');
  assert.equal(err.details.commandName, 'LINK');
  assert.equal(err.details.commandIndex, 6);
  assert.match(err.message, /command #6 \(LINK\).*PATH_LINK "\.\.\/a"/);
  await passes(link('a'));
  // A symlink's target is only text stored in the link: it may point anywhere.
  await passes(full().symlink('s', '../../etc/shadow').symlink('t', '/etc/shadow').end().build());
});

test('a path in a message is shown up to 80 characters, then cut with "…"', async () => {
  const at80 = `${'x'.repeat(77)}/..`;
  assert.match((await refused(writing(at80), 'sendstream_unsafe_path')).message, new RegExp(`PATH "${'x'.repeat(77)}/\\.\\.", which`));
  const longer = `${'y'.repeat(90)}/..`;
  assert.match((await refused(writing(longer), 'sendstream_unsafe_path')).message, new RegExp(`PATH "${'y'.repeat(80)}…", which`));
});

test('the subvolume name: 1 to 255 bytes', async () => {
  await passes(named('x'.repeat(255)));
  const long = await refused(named('x'.repeat(256)), 'sendstream_unsafe_name');
  assert.match(long.message, /256 bytes long, over btrfs's 255/);
  await passes(named('x'));
  // An empty PATH never reaches the policy: the parser refuses a SUBVOL without one (sendstream-parser tests).
});

test('the subvolume name: no "/", no NUL, no control character, each on its own', async () => {
  assert.match((await refused(named('a/b'), 'sendstream_unsafe_name')).message, /contains a "\/"/);
  assert.match((await refused(named(Buffer.from('a\0b')), 'sendstream_unsafe_name')).message, /NUL/);
  for (const c of [0x01, 0x09, 0x0a, 0x1f, 0x7f]) {
    const err = await refused(named(Buffer.from([0x61, c, 0x62])), 'sendstream_unsafe_name');
    assert.match(err.message, /control character/, `byte ${c}`);
    assert.equal(err.details.commandIndex, 0);
  }
  for (const ok of [' ', 'a b', '~', 'é', Buffer.from([0x61, 0x80, 0x62]), Buffer.from([0xff])]) await passes(named(ok), STRICT, String(ok));
});

test('the subvolume name: not "." or "..", but any other run of dots', async () => {
  assert.match((await refused(named('.'), 'sendstream_unsafe_name')).message, /it is "\."/);
  assert.match((await refused(named('..'), 'sendstream_unsafe_name')).message, /it is "\.\."/);
  for (const ok of ['...', '.x', 'x.', '.a.', 'a..', '..a']) await passes(named(ok), STRICT, ok);
});

test('a SUBVOL is a full send even when it carries a CLONE_UUID: btrfs receive ignores it there', async () => {
  const subvolWithClone = new SendStreamBuilder()
    .cmd(SendCmd.SUBVOL, tlv(SendAttr.PATH, 'snap'), tlv(SendAttr.UUID, uuidBytes(SELF)), tlv(SendAttr.CTRANSID, u64(10)), tlv(SendAttr.CLONE_UUID, uuidBytes(PARENT)))
    .end()
    .build();
  await passes(subvolWithClone);
  const err = await refused(subvolWithClone, 'sendstream_wrong_parent', { ...STRICT, parentUuid: PARENT });
  assert.equal(err.details.parentUuid, null);
  assert.equal(err.details.expectedParentUuid, PARENT);
  assert.match(err.message, /based on nothing \(a full send\), but the receiver chose/);
});

test('the parent and the clone sources are compared without regard to case', async () => {
  const snapshot = new SendStreamBuilder().snapshot('snap', SELF, PARENT).clone('a', 0, 4096, PARENT, 'a').end().build();
  const upper: SendStreamPolicy = { ...STRICT, parentUuid: PARENT.toUpperCase(), cloneSources: [PARENT.toUpperCase()] };
  await passes(snapshot, upper);
  const wrong = await refused(snapshot, 'sendstream_wrong_parent', STRICT);
  assert.equal(wrong.details.parentUuid, PARENT);
  assert.equal(wrong.details.expectedParentUuid, null);
  assert.match(wrong.message, new RegExp(`based on ${PARENT}, but the receiver chose a full send`));
});

test('a clone is refused when its source UUID is missing or not one the policy allows', async () => {
  const clone = (...attrs: Buffer[]) =>
    full().file('a', data).cmd(SendCmd.CLONE, tlv(SendAttr.PATH, 'b'), tlv(SendAttr.FILE_OFFSET, u64(0)), tlv(SendAttr.CLONE_LEN, u64(4096)), ...attrs, tlv(SendAttr.CLONE_PATH, 'a'), tlv(SendAttr.CLONE_OFFSET, u64(0))).end().build();
  const none = await refused(clone(), 'sendstream_foreign_clone');
  assert.equal(none.details.cloneUuid, null);
  assert.match(none.message, /\(no UUID\)/);
  const other = randomUuid();
  const foreign = await refused(clone(tlv(SendAttr.CLONE_UUID, uuidBytes(other))), 'sendstream_foreign_clone');
  assert.equal(foreign.details.cloneUuid, other);
  assert.match(foreign.message, new RegExp(`command #6 \\(CLONE\\).*from subvolume ${other}`));
  await passes(clone(tlv(SendAttr.CLONE_UUID, uuidBytes(SELF))), STRICT, 'its own subvolume');
  await passes(clone(tlv(SendAttr.CLONE_UUID, uuidBytes(other))), { ...STRICT, cloneSources: [randomUuid(), other] }, 'a listed source');
});

test('device nodes: MKNOD of a character or block device, refused only then', async () => {
  const mknod = (mode: number) => full().mknod('n', mode).end().build();
  const chr = await refused(mknod(0o020666), 'sendstream_device_refused');
  assert.equal(Number(chr.details.mode), 0o020666);
  assert.match(chr.message, /device node "n".*nodev/);
  await refused(mknod(0o060600), 'sendstream_device_refused');
  for (const mode of [0o010644, 0o140755, 0o100644]) await passes(mknod(mode), STRICT, `mode ${mode.toString(8)}`);
  await passes(mknod(0o020666), { ...STRICT, allowDevices: true });
  // CHMOD only changes permission bits: type bits in its MODE create nothing.
  await passes(full().file('f', data).chmod('f', 0o020644).end().build());
});

test('setuid and setgid bits are refused in CHMOD and MKNOD, the sticky bit is not', async () => {
  const chmod = (mode: number) => full().file('f', data).chmod('f', mode).end().build();
  for (const mode of [0o4755, 0o2755, 0o6755, 0o4000]) {
    const err = await refused(chmod(mode), 'sendstream_setuid_refused');
    assert.equal(Number(err.details.mode), mode);
    assert.match(err.message, new RegExp(`"f" setuid/setgid \\(mode ${mode.toString(8)}\\).*nosuid`));
  }
  await passes(chmod(0o1777), STRICT, 'sticky');
  await passes(chmod(0o0777));
  // btrfs receive creates a node with `mode & S_IFMT` only: MKNOD's permission bits grant nothing (a CHMOD sets them).
  await passes(full().mknod('p', 0o012644).end().build());
  await passes(chmod(0o4755), { ...STRICT, allowSetuid: true });
  // A CHMOD without MODE changes nothing btrfs receive would apply (it fails there).
  await passes(full().file('f', data).cmd(SendCmd.CHMOD, tlv(SendAttr.PATH, 'f')).end().build());
});

test('MODE counts only where btrfs receive applies it: MKNOD and CHMOD', async () => {
  // process_mkfile and process_mkdir create with fixed modes and never read MODE; a stray one grants nothing.
  const mkfile = full().cmd(SendCmd.MKFILE, tlv(SendAttr.PATH, 'f'), tlv(SendAttr.INO, u64(300)), tlv(SendAttr.MODE, u64(0o024755))).end().build();
  await passes(mkfile);
});

test('file capabilities: exactly the security.capability xattr, refused unless setuid is allowed', async () => {
  const xattr = (name: string) => full().file('f', data).setXattr('f', name, Buffer.alloc(20, 1)).end().build();
  const err = await refused(xattr('security.capability'), 'sendstream_setuid_refused');
  assert.match(err.message, /gives "f" file capabilities \(security\.capability\).*nosuid/);
  assert.equal(err.details.commandName, 'SET_XATTR');
  for (const name of ['security.capabilit', 'security.capabilityx', 'user.capability', 'security.selinux']) await passes(xattr(name), STRICT, name);
  await passes(xattr('security.capability'), { ...STRICT, allowSetuid: true });
  // Removing capabilities grants nothing; a SET_XATTR without a name sets nothing (btrfs receive fails on it).
  await passes(full().file('f', data).cmd(SendCmd.REMOVE_XATTR, tlv(SendAttr.PATH, 'f'), tlv(SendAttr.XATTR_NAME, 'security.capability')).end().build());
  await passes(full().file('f', data).cmd(SendCmd.SET_XATTR, tlv(SendAttr.PATH, 'f'), tlv(SendAttr.XATTR_DATA, Buffer.alloc(20, 1))).end().build());
});

test('a clone without a source UUID is refused even by a check that has not seen the subvolume yet', () => {
  // SendStreamPolicyCheck is exported; fed out of order it must not take "no UUID" for "this snapshot's UUID".
  const rules = new SendStreamPolicyCheck(STRICT);
  const clone = { index: 1, cmd: SendCmd.CLONE, name: 'CLONE', offset: 17, length: 0, attributes: [{ type: SendAttr.PATH, value: Buffer.from('b') }] };
  assert.throws(() => rules.visit(clone), (err: unknown) => err instanceof SendStreamPolicyError && err.code === 'sendstream_foreign_clone');
});

interface Encoded {
  unencodedLen?: Buffer | null;
  fileLen?: Buffer | null;
  offset?: Buffer | null;
  compression?: Buffer | null;
  encryption?: Buffer | null;
  data?: Buffer | null;
}

/** An ENCODED_WRITE as the kernel writes one (send.c send_encoded_extent); null leaves a field out. */
function encoded(e: Encoded = {}): Buffer {
  const field = (type: number, value: Buffer | null | undefined, standard: Buffer) => (value === null ? [] : [tlv(type, value ?? standard)]);
  const attrs = [
    tlv(SendAttr.PATH, 'f'),
    tlv(SendAttr.FILE_OFFSET, u64(0)),
    ...field(SendAttr.UNENCODED_FILE_LEN, e.fileLen, u64(10_400)),
    ...field(SendAttr.UNENCODED_LEN, e.unencodedLen, u64(12 * KiB)),
    ...field(SendAttr.UNENCODED_OFFSET, e.offset, u64(0)),
    ...field(SendAttr.COMPRESSION, e.compression, u32(2)),
    ...field(SendAttr.ENCRYPTION, e.encryption, u32(0)),
    ...(e.data === null ? [] : [dataTlv(2, e.data ?? Buffer.alloc(4 * KiB, 7))]),
  ];
  return full(2).file('f', Buffer.from('x')).cmd(SendCmd.ENCODED_WRITE, ...attrs).end().build();
}

async function badEncoded(e: Encoded, message: RegExp): Promise<SendStreamPolicyError> {
  const err = await refused(encoded(e), 'sendstream_bad_encoded_write');
  assert.match(err.message, message);
  assert.match(err.message, /command #6 \(ENCODED_WRITE\) of the btrfs send stream writes "f"/);
  return err;
}

test('ENCODED_WRITE: each of UNENCODED_LEN, UNENCODED_FILE_LEN, UNENCODED_OFFSET and COMPRESSION must be there', async () => {
  await passes(encoded());
  const lacks = /lacks one of UNENCODED_LEN, UNENCODED_FILE_LEN, UNENCODED_OFFSET \(u64\) or COMPRESSION \(u32\)/;
  assert.equal((await badEncoded({ unencodedLen: null }, lacks)).details.unencodedLen, null);
  assert.equal((await badEncoded({ fileLen: null }, lacks)).details.unencodedFileLen, null);
  assert.equal((await badEncoded({ offset: null }, lacks)).details.unencodedOffset, null);
  assert.equal((await badEncoded({ compression: null }, lacks)).details.compression, null);
  // Mis-sized values are no values: btrfs receive refuses them, and they must not read as something else here.
  await badEncoded({ unencodedLen: u32(12 * KiB) }, lacks);
  await badEncoded({ compression: u64(2) }, lacks);
});

test('ENCODED_WRITE: sizes above 2^53 are refused, not read as something smaller', async () => {
  // 2^64 - 1 and 2^53 + 1: beyond any extent, so refused whether read exactly or found unreadable.
  for (const big of [2n ** 64n - 1n, 2n ** 53n + 1n]) {
    await refused(encoded({ unencodedLen: u64(big) }), 'sendstream_bad_encoded_write');
    await refused(encoded({ fileLen: u64(big) }), 'sendstream_bad_encoded_write');
    await refused(encoded({ offset: u64(big) }), 'sendstream_bad_encoded_write');
  }
});

test('ENCODED_WRITE: UNENCODED_LEN up to 128 KiB', async () => {
  await passes(encoded({ unencodedLen: u64(128 * KiB) }));
  const err = await badEncoded({ unencodedLen: u64(128 * KiB + 1), fileLen: u64(4 * KiB) }, /UNENCODED_LEN is 131073 bytes, over the 131072 of an encoded extent/);
  assert.equal(Number(err.details.unencodedLen), 128 * KiB + 1);
  assert.equal(Number(err.details.unencodedFileLen), 4 * KiB);
  assert.equal(Number(err.details.unencodedOffset), 0);
  assert.equal(Number(err.details.compression), 2);
  assert.equal(Number(err.details.encryption), 0);
  assert.equal(Number(err.details.dataBytes), 4 * KiB);
});

test('ENCODED_WRITE: the file range must lie inside the extent', async () => {
  const len = u64(8 * KiB);
  await passes(encoded({ unencodedLen: len, offset: u64(2 * KiB), fileLen: u64(6 * KiB) }), STRICT, 'ends at the end');
  await badEncoded({ unencodedLen: len, offset: u64(2 * KiB), fileLen: u64(6 * KiB + 1) }, /UNENCODED_OFFSET 2048 \+ UNENCODED_FILE_LEN 6145 runs past UNENCODED_LEN 8192/);
  await badEncoded({ unencodedLen: len, offset: u64(8 * KiB + 1), fileLen: u64(0) }, /runs past/);
  await badEncoded({ unencodedLen: len, offset: u64(0), fileLen: u64(8 * KiB + 1) }, /runs past/);
});

test('ENCODED_WRITE: up to 128 KiB of encoded data', async () => {
  await passes(encoded({ data: Buffer.alloc(128 * KiB) }));
  await passes(encoded({ data: null }), STRICT, 'no DATA at all');
  const err = await badEncoded({ data: Buffer.alloc(128 * KiB + 1) }, /carries 131073 bytes of encoded data, over the 131072/);
  assert.equal(Number(err.details.dataBytes), 128 * KiB + 1);
});

test('ENCODED_WRITE: COMPRESSION 1 to 7, each end', async () => {
  for (const c of [1, 2, 3, 7]) await passes(encoded({ compression: u32(c) }), STRICT, `compression ${c}`);
  await badEncoded({ compression: u32(0) }, /its COMPRESSION is 0, not one btrfs knows \(1\.\.7\)/);
  await badEncoded({ compression: u32(8) }, /its COMPRESSION is 8/);
  await badEncoded({ compression: u32(0xffffffff) }, /its COMPRESSION is 4294967295/);
});

test('ENCODED_WRITE: ENCRYPTION absent or 0', async () => {
  await passes(encoded({ encryption: null }));
  const err = await badEncoded({ encryption: u32(1) }, /its ENCRYPTION is 1; btrfs has no encrypted extents/);
  assert.equal(Number(err.details.encryption), 1);
});

test('MKNOD: the refusal names the kind of device, and a MKNOD without MODE (receive fails on it) is not judged', async () => {
  const chr = await refused(full().mknod('c', 0o020600, 0x103).end().build(), 'sendstream_device_refused');
  assert.match(chr.message, /the character device node "c"/);
  const blk = await refused(full().mknod('b', 0o060600, 0x800).end().build(), 'sendstream_device_refused');
  assert.match(blk.message, /the block device node "b"/);
  await passes(full().cmd(SendCmd.MKNOD, tlv(SendAttr.PATH, 'n'), tlv(SendAttr.RDEV, u64(0x103))).end().build());
});

test('device types count only in MKNOD: a CHMOD or MKFILE whose MODE carries S_IFCHR/S_IFBLK bits makes no device', async () => {
  // chmod(2) keeps 07777 of a mode and MKFILE never reads MODE: neither can make a device, whatever MODE says.
  await passes(full().file('f', data).chmod('f', 0o020644).end().build());
  await passes(full().file('f', data).chmod('f', 0o060644).end().build());
  const mkfile = full().cmd(SendCmd.MKFILE, tlv(SendAttr.PATH, 'g'), tlv(SendAttr.INO, u64(301)), tlv(SendAttr.MODE, u64(0o060644))).end().build();
  await passes(mkfile);
});

test('the capability refusal says where in the stream it is', async () => {
  const stream = full().file('f', data).cmd(SendCmd.SET_XATTR, tlv(SendAttr.PATH, 'f'), tlv(SendAttr.XATTR_NAME, 'security.capability'), tlv(SendAttr.XATTR_DATA, Buffer.alloc(20))).end().build();
  const err = await refused(stream, 'sendstream_setuid_refused');
  assert.equal(typeof err.details.commandIndex, 'number');
  assert.equal(err.details.commandName, 'SET_XATTR');
});

test('ENCODED_WRITE details are JSON numbers up to 2^53-1 and decimal strings beyond', async () => {
  // Over the extent bound but a safe integer: a number, as JSON carries it exactly.
  const small = await badEncoded({ unencodedLen: u64(128 * KiB + 1), fileLen: u64(4 * KiB) }, /UNENCODED_LEN/);
  assert.equal(small.details.unencodedLen, 128 * KiB + 1);
  const edge = await refused(encoded({ unencodedLen: u64(BigInt(Number.MAX_SAFE_INTEGER)) }), 'sendstream_bad_encoded_write');
  assert.equal(edge.details.unencodedLen, Number.MAX_SAFE_INTEGER);
  const beyond = await refused(encoded({ unencodedLen: u64(BigInt(Number.MAX_SAFE_INTEGER) + 1n) }), 'sendstream_bad_encoded_write');
  assert.equal(beyond.details.unencodedLen, '9007199254740992');
});

test('an xattr name with a NUL is refused in every mode, and the refusal names the attribute and the command', async () => {
  const stream = full().file('f', data).cmd(SendCmd.SET_XATTR, tlv(SendAttr.PATH, 'f'), tlv(SendAttr.XATTR_NAME, Buffer.from('user.a\0b')), tlv(SendAttr.XATTR_DATA, data)).end().build();
  const err = await refused(stream, 'sendstream_unsafe_name', { ...STRICT, allowSetuid: true, allowDevices: true });
  assert.equal(err.details.attribute, 'XATTR_NAME');
  assert.equal(err.details.commandName, 'SET_XATTR');
});

test('XATTR_NAME counts only in SET_XATTR and REMOVE_XATTR: a stray one on another command sets nothing', async () => {
  // process_write never reads XATTR_NAME: a capability named there is no capability, a NUL in it cuts nothing.
  const stray = (name: string | Buffer) => full().file('f', data).cmd(SendCmd.WRITE, tlv(SendAttr.PATH, 'f'), tlv(SendAttr.FILE_OFFSET, u64(0)), tlv(SendAttr.XATTR_NAME, name), tlv(SendAttr.DATA, data)).end().build();
  await passes(stray('security.capability'));
  await passes(stray(Buffer.from('user.a\0b')));
});
