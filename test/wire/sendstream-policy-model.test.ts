/**
 * Property tests: the policy against a model of how btrfs receive reads and applies a stream
 * (sendstream-receive-model.ts, written from btrfs-progs' code, with its own TLV walk and CRC). For any u64 MODE and
 * RDEV and any bytes as an xattr name or path, in refuse mode nothing the model says would be privileged (a setuid or
 * setgid mode, a character or block device, file capabilities) is accepted, and what the model says is harmless is
 * accepted. The one deliberate difference: names and paths with a NUL are refused outright (btrfs send never writes
 * one), where btrfs receive would cut them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SendStreamParser } from '../../core/wire/sendstream-parser.ts';
import { SendStreamPolicyCheck, SendStreamPolicyError, unsafePathReason } from '../../core/wire/sendstream-policy.ts';
import type { SendStreamPolicy } from '../../core/wire/sendstream-policy.ts';
import { SendAttr, SendCmd } from '../../core/wire/sendstream-format.ts';
import { command, streamHeader, tlv, u64 } from './sendstream-builder.ts';
import { cString, receiveEffect, receiveStream } from './sendstream-receive-model.ts';

const UUID = '0ee74cad-645d-9f4f-ad2e-12a379694756';
const REFUSE: SendStreamPolicy = { parentUuid: null, cloneSources: [], allowDevices: false, allowSetuid: false };
const ALLOW: SendStreamPolicy = { ...REFUSE, allowDevices: true, allowSetuid: true };
const RUNS = { numRuns: 2000 };

/** Any u64, with the shapes that matter drawn often: high bits over file types and setuid/setgid bits. */
const anyU64 = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  fc.integer({ min: 0, max: 0o177777 }).map(BigInt),
  fc.tuple(fc.integer({ min: 32, max: 63 }), fc.integer({ min: 0, max: 0o177777 })).map(([bit, low]) => (1n << BigInt(bit)) | BigInt(low)),
  fc.tuple(fc.bigInt({ min: 0n, max: 2n ** 32n - 1n }), fc.integer({ min: 0, max: 0o177777 })).map(([high, low]) => (high << 32n) | BigInt(low)),
);

/** Any bytes as an xattr name, often a known name with a NUL and a tail after it. */
const anyName = fc.oneof(
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
  fc
    .tuple(
      fc.constantFrom('security.capability', 'security.capabilit', 'security.Capability', 'user.note', 'trusted.x', ''),
      fc.option(fc.uint8Array({ maxLength: 8 }), { nil: undefined }),
    )
    .map(([name, tail]) => (tail === undefined ? Buffer.from(name) : Buffer.concat([Buffer.from(name), Buffer.from([0]), tail]))),
);

type Cmd = { cmd: number; attrs: Buffer[] };

const chmodCmd = (mode: bigint): Cmd => ({ cmd: SendCmd.CHMOD, attrs: [tlv(SendAttr.PATH, 'f'), tlv(SendAttr.MODE, u64(mode))] });
const mknodCmd = (mode: bigint, rdev: bigint): Cmd => ({
  cmd: SendCmd.MKNOD,
  attrs: [tlv(SendAttr.PATH, 'n'), tlv(SendAttr.INO, u64(300)), tlv(SendAttr.MODE, u64(mode)), tlv(SendAttr.RDEV, u64(rdev))],
});
const xattrCmd = (name: Buffer): Cmd => ({
  cmd: SendCmd.SET_XATTR,
  attrs: [tlv(SendAttr.PATH, 'f'), tlv(SendAttr.XATTR_NAME, name), tlv(SendAttr.XATTR_DATA, Buffer.alloc(20, 1))],
});

/** SUBVOL, the commands, END: a stream whose only question is what its commands do. */
function streamOf(cmds: readonly Cmd[]): Buffer {
  const subvol = command(SendCmd.SUBVOL, tlv(SendAttr.PATH, 'snap'), tlv(SendAttr.UUID, Buffer.from(UUID.replaceAll('-', ''), 'hex')), tlv(SendAttr.CTRANSID, u64(1)));
  return Buffer.concat([streamHeader(1), subvol, ...cmds.map((c) => command(c.cmd, ...c.attrs)), command(SendCmd.END)]);
}

/** The policy's verdict on a stream: the indices of the commands it accepted, and its refusal if any. */
function judge(stream: Buffer, policy: SendStreamPolicy): { accepted: number[]; refusal: SendStreamPolicyError | undefined } {
  const rules = new SendStreamPolicyCheck(policy);
  const accepted: number[] = [];
  const parser = new SendStreamParser({
    onCommand: (c) => {
      rules.visit(c);
      accepted.push(c.index);
    },
  });
  try {
    parser.push(stream);
    parser.end();
    return { accepted, refusal: undefined };
  } catch (err) {
    if (err instanceof SendStreamPolicyError) return { accepted, refusal: err };
    throw err;
  }
}

/** What the model says command `c` makes that refuse mode must keep out; null when nothing. */
function privilege(c: Cmd): string | null {
  const attrs = new Map<number, Buffer>();
  for (const a of c.attrs) attrs.set(a.readUInt16LE(0), a.subarray(4, 4 + a.readUInt16LE(2)));
  const effect = receiveEffect(c.cmd, attrs);
  return effect.applied ? effect.privileged : null;
}

test('CHMOD with any u64 MODE: refused in refuse mode exactly when btrfs receive would set setuid or setgid', () => {
  fc.assert(
    fc.property(anyU64, (mode) => {
      const c = chmodCmd(mode);
      const { refusal } = judge(streamOf([c]), REFUSE);
      assert.equal(refusal !== undefined, privilege(c) !== null, `MODE ${mode.toString(8)}: ${refusal?.message ?? 'accepted'}`);
      if (refusal) assert.equal(refusal.code, 'sendstream_setuid_refused');
      assert.equal(judge(streamOf([c]), ALLOW).refusal, undefined);
    }),
    RUNS,
  );
});

test('MKNOD with any u64 MODE and RDEV: refused in refuse mode exactly when btrfs receive would make a device', () => {
  fc.assert(
    fc.property(anyU64, anyU64, (mode, rdev) => {
      const c = mknodCmd(mode, rdev);
      const { refusal } = judge(streamOf([c]), REFUSE);
      assert.equal(refusal !== undefined, privilege(c) !== null, `MODE ${mode.toString(8)}: ${refusal?.message ?? 'accepted'}`);
      if (refusal) assert.equal(refusal.code, 'sendstream_device_refused');
      assert.equal(judge(streamOf([c]), ALLOW).refusal, undefined);
    }),
    RUNS,
  );
});

test('SET_XATTR with any bytes as its name: capabilities refused, a NUL refused in every mode, the rest accepted', () => {
  fc.assert(
    fc.property(anyName, (name) => {
      const c = xattrCmd(name);
      const refuse = judge(streamOf([c]), REFUSE).refusal;
      const allow = judge(streamOf([c]), ALLOW).refusal;
      if (name.includes(0)) {
        assert.equal(refuse?.code, 'sendstream_unsafe_name');
        assert.equal(allow?.code, 'sendstream_unsafe_name');
        return;
      }
      assert.equal(refuse?.code, privilege(c) === null ? undefined : 'sendstream_setuid_refused', name.toString('latin1'));
      assert.equal(allow, undefined);
    }),
    RUNS,
  );
});

test('paths with any bytes: accepted only when the C string btrfs receive joins is the same path and stays inside', () => {
  const anyPath = fc.oneof(
    fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b)),
    fc.array(fc.constantFrom('a', '.', '..', '...', '', '\0', '..\0x', 'b\0'), { maxLength: 6 }).map((parts) => Buffer.from(parts.join('/'), 'latin1')),
  );
  fc.assert(
    fc.property(anyPath, (path) => {
      const joined = cString(path);
      const inside = joined[0] !== 0x2f && !joined.toString('latin1').split('/').includes('..');
      const accepted = unsafePathReason(path) === undefined;
      if (accepted) assert.ok(inside && joined.length === path.length, JSON.stringify(path.toString('latin1')));
      else assert.ok(!inside || joined.length !== path.length, `${JSON.stringify(path.toString('latin1'))} is harmless`);
    }),
    RUNS,
  );
});

test('whole streams of such commands: every command the policy lets through is one the model finds harmless', () => {
  const anyCmd = fc.oneof(
    anyU64.map(chmodCmd),
    fc.tuple(anyU64, anyU64).map(([mode, rdev]) => mknodCmd(mode, rdev)),
    anyName.map(xattrCmd),
    fc.constant<Cmd>({ cmd: SendCmd.MKFILE, attrs: [tlv(SendAttr.PATH, 'f'), tlv(SendAttr.INO, u64(257))] }),
  );
  fc.assert(
    fc.property(fc.array(anyCmd, { maxLength: 8 }), (cmds) => {
      const stream = streamOf(cmds);
      const { accepted, refusal } = judge(stream, REFUSE);
      const model = receiveStream(stream);
      for (const index of accepted) {
        // Undefined: btrfs receive stopped before this command (at a command that failed), so it applies nothing.
        const read = model.commands[index];
        if (read === undefined) continue;
        assert.equal(read.cmd, index === 0 ? SendCmd.SUBVOL : cmds[index - 1]?.cmd, 'the model reads the same commands');
        assert.ok(!read.effect.applied || read.effect.privileged === null, `command #${index} was accepted and makes ${read.effect.applied ? read.effect.privileged : ''}`);
      }
      // Harmless by the model, and no NUL in a name: the whole stream passes.
      const harmless = cmds.every((c) => privilege(c) === null && !(c.cmd === SendCmd.SET_XATTR && c.attrs[1]!.subarray(4).includes(0)));
      assert.equal(refusal === undefined, harmless, refusal?.message ?? 'accepted');
    }),
    { numRuns: 500 },
  );
});
