/**
 * The policy's symlink rule (core/wire/sendstream-symlinks.ts), each case on both sides of its line: a path through
 * a symlink (the stream's own, moved, linked, or the parent's) is refused; the nearest stream that does not reach
 * through one passes. btrfs receive --chroot makes `/` the folder received into, so a path through `up -> /` is the
 * user's files. The real streams btrfs send writes pass too: test/btrfs/sendstream-symlinks-real.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SendStreamCheck } from '../../core/wire/sendstream-check.ts';
import { SendStreamPolicyError, type SendStreamPolicy } from '../../core/wire/sendstream-policy.ts';
import type { ParentEntryKind } from '../../core/wire/sendstream-symlinks.ts';
import { SendAttr, SendCmd } from '../../core/wire/sendstream-format.ts';
import { SendStreamBuilder, randomUuid } from '../fixtures/send-streams.ts';
import { slices, tlv, u64 } from './sendstream-builder.ts';

const SELF = randomUuid();
const PARENT = randomUuid();
const data = Buffer.from('x\n');
const FULL: SendStreamPolicy = { parentUuid: null, cloneSources: [], allowDevices: true, allowSetuid: true };

/** A parent snapshot as the lookup sees it: path -> kind; everything else is missing. */
function parentOf(entries: Record<string, ParentEntryKind>): SendStreamPolicy {
  return { parentUuid: PARENT, cloneSources: [PARENT], allowDevices: true, allowSetuid: true, parentEntries: (p) => entries[p] ?? 'missing' };
}

async function outcome(build: (b: SendStreamBuilder) => SendStreamBuilder, policy: SendStreamPolicy = FULL): Promise<unknown> {
  const first = new SendStreamBuilder();
  const b = policy.parentUuid === null ? first.subvol('snap', SELF) : first.snapshot('snap', SELF, policy.parentUuid);
  const bytes = build(b).end().build();
  try {
    await pipeline(Readable.from(slices(bytes, 29)), new SendStreamCheck({ policy }), new Writable({ write: (_c, _e, cb) => cb() }));
    return undefined;
  } catch (err) {
    return err;
  }
}

async function refused(build: (b: SendStreamBuilder) => SendStreamBuilder, policy: SendStreamPolicy = FULL, symlink = 'up'): Promise<void> {
  const err = await outcome(build, policy);
  assert.ok(err instanceof SendStreamPolicyError, `expected a refusal, got ${String(err)}`);
  assert.equal(err.code, 'sendstream_unsafe_path');
  assert.equal(err.retryable, false);
  assert.match(err.message, new RegExp(`"${symlink}" is a symlink`));
}

async function passes(build: (b: SendStreamBuilder) => SendStreamBuilder, policy: SendStreamPolicy = FULL): Promise<void> {
  const err = await outcome(build, policy);
  assert.equal(err, undefined, String(err));
}

const rename = (b: SendStreamBuilder, from: string, to: string) => b.cmd(SendCmd.RENAME, tlv(SendAttr.PATH, from), tlv(SendAttr.PATH_TO, to));
const unlink = (b: SendStreamBuilder, p: string) => b.cmd(SendCmd.UNLINK, tlv(SendAttr.PATH, p));
const chown = (b: SendStreamBuilder, p: string) => b.cmd(SendCmd.CHOWN, tlv(SendAttr.PATH, p), tlv(SendAttr.UID, u64(0)), tlv(SendAttr.GID, u64(0)));
const link = (b: SendStreamBuilder, p: string, existing: string) => b.cmd(SendCmd.LINK, tlv(SendAttr.PATH, p), tlv(SendAttr.PATH_LINK, existing));
const truncate = (b: SendStreamBuilder, p: string) => b.cmd(SendCmd.TRUNCATE, tlv(SendAttr.PATH, p), tlv(SendAttr.SIZE, u64(0)));

test("a path through the stream's own symlink is refused, for every command that names one; beside it, it passes", async () => {
  await refused((b) => b.symlink('up', '/').write('up/mine', data));
  await refused((b) => b.symlink('up', '/').chmod('up/mine', 0o777));
  await refused((b) => unlink(b.symlink('up', '/'), 'up/mine'));
  await refused((b) => rename(b.symlink('up', '/'), 'up/mine', 'stolen'));
  await refused((b) => rename(b.symlink('up', '/').mkfileAt('f'), 'f', 'up/mine'));
  await refused((b) => link(b.symlink('up', '/'), 'l', 'up/mine'));
  await refused((b) => b.symlink('up', '/').mkfileAt('up/planted'));
  await refused((b) => b.symlink('up', '../..').symlink('up/x', 'y'));
  await passes((b) => b.symlink('up', '/').write('mine', data));
  await passes((b) => b.mkdir('up').mkfileAt('up/mine').write('up/mine', data));
});

test('a command that follows the last component is refused on a symlink; one that does not, as btrfs send uses, passes', async () => {
  await refused((b) => b.symlink('up', '/').chmod('up', 0o777));
  await refused((b) => b.symlink('up', '/mine').write('up', data));
  await refused((b) => truncate(b.symlink('up', '/mine'), 'up'));
  await passes((b) => chown(b.symlink('up', '/'), 'up'));
  await passes((b) => unlink(rename(b.symlink('o300-7-0', '/'), 'o300-7-0', 'up'), 'up'));
});

test('a symlink is followed through renames and hard links, and forgotten once it is unlinked or renamed over', async () => {
  await refused((b) => rename(b.symlink('o300-7-0', '/'), 'o300-7-0', 'up').write('up/mine', data));
  await refused((b) => rename(b.mkdir('d').symlink('d/up', '/'), 'd', 'e').write('e/up/mine', data), FULL, 'e/up');
  await refused((b) => link(b.symlink('s', '/'), 'up', 's').write('up/mine', data));
  await passes((b) => unlink(b.symlink('up', '/'), 'up').mkdir('up').mkfileAt('up/mine').write('up/mine', data));
  await passes((b) => rename(b.symlink('up', '/').mkdir('d'), 'd', 'up').mkfileAt('up/mine').write('up/mine', data));
  await passes((b) => rename(b.symlink('up', '/'), 'up', 'gone').mkdir('up').mkfileAt('up/mine'));
});

test("an incremental stream cannot reach through the parent snapshot's symlinks, where they are or where it moved them", async () => {
  const parent = parentOf({ up: 'symlink', d: 'directory', 'd/up': 'symlink', 'd/f': 'other', e: 'directory' });
  await refused((b) => b.write('up/mine', data), parent);
  await refused((b) => b.write('d/up/mine', data), parent, 'd/up');
  await refused((b) => rename(b, 'd', 'moved').write('moved/up/mine', data), parent, 'moved/up');
  await refused((b) => rename(b, 'up', 'e/up2').write('e/up2/mine', data), parent, 'e/up2');
  await passes((b) => b.write('d/f', data).write('e/new', data), parent);
  await passes((b) => unlink(b, 'up').mkdir('up').mkfileAt('up/mine'), parent);
  await passes((b) => rename(b, 'd', 'moved').mkdir('d').mkfileAt('d/up'), parent);
  // Without the lookup, a parent's symlinks are unknown: this is what it is for.
  await passes((b) => b.write('up/mine', data), { ...parent, parentEntries: undefined });
});

test("a clone's source path is held to the same rule, in the stream's own tree or in the parent's", async () => {
  const parent = parentOf({ up: 'symlink', f: 'other' });
  await refused((b) => b.mkfileAt('f2').clone('f2', 0, 4096, PARENT, 'up/mine'), parent);
  await passes((b) => b.mkfileAt('f2').clone('f2', 0, 4096, PARENT, 'f'), parent);
  await refused((b) => b.symlink('up', '/').mkfileAt('f').clone('f', 0, 4096, SELF, 'up/mine'));
  await passes((b) => b.mkfileAt('g').mkfileAt('f').clone('f', 0, 4096, SELF, 'g'));
});
