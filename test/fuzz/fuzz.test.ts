/**
 * The coverage-guided fuzzers (test/fuzz/run.ts) run in CI for a bounded time (FUZZ_SECONDS: 21 s of fuzzing by
 * default, shared by the three targets, plus about 2.5 s for each to start), and the test fails when one crashed,
 * hung, let a privileged file through the refuse policy, or never ran. The first tests hold the harness itself: its
 * seeds pass, and its oracle does catch a policy that lets privileged files through (so a fuzzer that finds nothing
 * is finding nothing, not unable to see).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SendAttr, SendCmd } from '../../core/wire/sendstream-format.ts';
import { SendStreamBuilder } from '../fixtures/send-streams.ts';
import { tlv, u64 } from '../wire/sendstream-builder.ts';
import { assertNothingPrivileged, checkSendStream, judge } from './oracle.ts';
import { seeds } from './seeds.ts';
import { policyInput, policyStream, targets, type TargetName } from './targets.ts';
import { runFuzz } from './run.ts';
import { receiveStream } from '../wire/sendstream-receive-model.ts';

const UUID = '0ee74cad-645d-9f4f-ad2e-12a379694756';

test('every seed runs through its target without a finding', async () => {
  const corpus = await seeds();
  for (const [name, inputs] of Object.entries(corpus) as [TargetName, Buffer[]][]) {
    assert.ok(inputs.length >= 6, `${name} has seeds`);
    for (const input of inputs) targets[name](input);
  }
});

test('the oracle sees a privileged file let through: the attacks of issue 17 under a policy that allows them', () => {
  const full = () => new SendStreamBuilder().subvol('snap', UUID).mkfileAt('f');
  const attacks = [
    full().cmd(SendCmd.CHMOD, tlv(SendAttr.PATH, 'f'), tlv(SendAttr.MODE, u64((1n << 60n) | 0o4755n))),
    full().cmd(SendCmd.MKNOD, tlv(SendAttr.PATH, 'n'), tlv(SendAttr.INO, u64(9)), tlv(SendAttr.MODE, u64((1n << 60n) | 0o020000n)), tlv(SendAttr.RDEV, u64(0x103))),
    full().cmd(SendCmd.SET_XATTR, tlv(SendAttr.PATH, 'f'), tlv(SendAttr.XATTR_NAME, Buffer.from('security.capability')), tlv(SendAttr.XATTR_DATA, Buffer.alloc(20))),
  ].map((b) => b.end().build());
  for (const stream of attacks) {
    assert.throws(() => assertNothingPrivileged(stream, judge([stream], 'allow')), /passed the refuse policy, and btrfs receive would make/);
    assert.doesNotThrow(() => checkSendStream(stream), 'the refuse policy stops it');
  }
  // The name cut at its NUL is capabilities to the model (the policy refuses it in every mode, so no policy here
  // lets it through to show the oracle failing).
  const cut = full().cmd(SendCmd.SET_XATTR, tlv(SendAttr.PATH, 'f'), tlv(SendAttr.XATTR_NAME, Buffer.from('security.capability\0x')), tlv(SendAttr.XATTR_DATA, Buffer.alloc(20))).end().build();
  assert.deepEqual(receiveStream(cut).commands[2]?.effect, { applied: true, privileged: 'file capabilities' });
  assert.equal(judge([cut], 'allow').error?.code, 'sendstream_unsafe_name');
  // The policy target's decoding reaches the same command: CHMOD with an 8-byte MODE.
  const input = policyInput(1, [{ cmd: SendCmd.CHMOD, attrs: [[SendAttr.PATH, Buffer.from('f')], [SendAttr.MODE, u64((1n << 60n) | 0o4755n)]] }]);
  assert.throws(() => assertNothingPrivileged(policyStream(input), judge([policyStream(input)], 'allow')), /would make setuid/);
});

test('coverage-guided fuzzing of the frame parser, the send-stream parser and the policy finds nothing', { timeout: 180_000 }, async () => {
  const seconds = Number(process.env.FUZZ_SECONDS ?? 21);
  const lines: string[] = [];
  const results = await runFuzz({ seconds, log: (line) => lines.push(line) });
  for (const r of results) {
    assert.equal(r.crash, null, `${r.target} found a problem:\n${lines.join('\n')}`);
    // A target that never got going (a broken bundle, a worker that died at start) must not pass as "found nothing".
    assert.ok(r.executions >= 100 && r.coverage > 0, `${r.target} ran only ${r.executions} inputs:\n${r.log.slice(-2000)}`);
  }
});
