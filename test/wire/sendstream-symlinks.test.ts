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
import { SendStreamSymlinks, type ParentEntryKind } from '../../core/wire/sendstream-symlinks.ts';
import { SendAttr, SendCmd } from '../../core/wire/sendstream-format.ts';
import { SendStreamBuilder, randomUuid } from '../fixtures/send-streams.ts';
import { slices, tlv, u64, uuidBytes } from './sendstream-builder.ts';

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

test('each change to the tree counts: what unlink, rename, link and create leave behind', async () => {
  // A name freed by UNLINK is nothing: a file made there is a file.
  await passes((b) => unlink(b.symlink('up', '/'), 'up').mkfileAt('up').write('up', data));
  await passes((b) => unlink(b.mkfileAt('gone'), 'gone').mkfileAt('gone').write('gone', data));
  // Creating over a symlink fails in btrfs receive (EEXIST): the symlink stays one.
  await refused((b) => b.symlink('up', '/').mkfileAt('up').write('up/mine', data));
  // Only UNLINK, RMDIR and RENAME take a name away; CHOWN or a write beside it do not.
  await refused((b) => chown(b.symlink('up', '/'), 'up').write('up/mine', data));
  // A hard link to a file is a file; a link to what the tree does not know is nothing special.
  await passes((b) => link(b.mkfileAt('f'), 'l', 'f').write('l', data));
  await passes((b) => link(b, 'l', 'nowhere').mkfileAt('m').write('m', data));
  // A rename into a folder that holds a symlink keeps that symlink; into a folder nobody made, it is still judged.
  await refused((b) => rename(b.mkdir('d').symlink('d/up', '/').mkfileAt('f'), 'f', 'd/new').write('d/up/mine', data), FULL, 'd/up');
  await passes((b) => rename(b.mkfileAt('f'), 'f', 'nowhere/g').write('nowhere/g', data));
  // Attributes a command lacks are not paths: btrfs receive fails that command, and the rule has nothing to judge.
  await passes((b) => b.cmd(SendCmd.RENAME, tlv(SendAttr.PATH, 'a')).cmd(SendCmd.LINK, tlv(SendAttr.PATH, 'b')).mkfileAt('c'));
});

test('paths are judged by their components as the kernel resolves them: "." and empty ones change nothing', async () => {
  await refused((b) => b.symlink('up', '/').write('./up/mine', data));
  await refused((b) => b.mkdir('d').symlink('d/up', '/').write('d//up/mine', data), FULL, 'd/up');
  await refused((b) => b.mkdir('d').symlink('d/up', '/').write('d/./up/mine', data), FULL, 'd/up');
});

test("the parent's entries are looked up by their full path, and only for an incremental stream", async () => {
  const parent = parentOf({ d: 'directory', 'd/x': 'directory', x: 'symlink' });
  await passes((b) => b.write('d/x/f', data), parent);
  await refused((b) => b.write('x/f', data), parent, 'x');
  // A full stream starts from nothing, whatever a lookup would say.
  await passes((b) => b.mkfileAt('x').write('x', data), { ...FULL, parentEntries: parent.parentEntries! });
});

test("a clone from the parent reads the parent as it is; a clone from the stream's own snapshot, as the stream left it", async () => {
  const parent = parentOf({ up: 'symlink', s: 'directory', 's/f': 'other' });
  // The stream removed the parent's `up` from its own tree; the parent still has it.
  await refused((b) => unlink(b, 'up').mkfileAt('g').clone('g', 0, 4096, PARENT, 'up/mine'), parent);
  // The stream made its own `s` a symlink; the parent's `s` is a folder.
  await passes((b) => b.cmd(SendCmd.RMDIR, tlv(SendAttr.PATH, 's')).symlink('s', '/').mkfileAt('g').clone('g', 0, 4096, PARENT, 's/f'), parent);
  await refused((b) => b.cmd(SendCmd.RMDIR, tlv(SendAttr.PATH, 's')).symlink('s', '/').mkfileAt('g').clone('g', 0, 4096, SELF, 's/f'), parent, 's');
  // A CLONE without a source path has nothing to judge here (btrfs receive fails it).
  await passes((b) => b.mkfileAt('g').cmd(SendCmd.CLONE, tlv(SendAttr.PATH, 'g'), tlv(SendAttr.CLONE_UUID, uuidBytes(SELF))));
  // A clone opens its source, following a symlink at its end.
  await refused((b) => b.symlink('s2', '/mine').mkfileAt('g').clone('g', 0, 4096, SELF, 's2'), FULL, 's2');
});

test('what the symlink tree holds does not grow with every file a stream moves or deletes: only symlinks and what hides the parent stay', () => {
  const attr = (type: number, value: string) => ({ type, value: Buffer.from(value) });
  const full = new SendStreamSymlinks();
  full.start(null);
  // A full stream makes files under orphan names and renames them into place, then an incremental-like churn of unlinks.
  for (let i = 0; i < 2000; i++) {
    full.visit({ cmd: SendCmd.RENAME, attributes: [attr(SendAttr.PATH, `o${i + 257}-5-0`), attr(SendAttr.PATH_TO, `d/f${i}`)] } as never);
    full.visit({ cmd: SendCmd.UNLINK, attributes: [attr(SendAttr.PATH, `d/g${i}`)] } as never);
  }
  assert.ok(full.tracked <= 1, `a full stream's renames and unlinks left ${full.tracked} entries`);
  full.visit({ cmd: SendCmd.SYMLINK, attributes: [attr(SendAttr.PATH, 'd/up')] } as never);
  assert.ok(full.visit({ cmd: SendCmd.WRITE, attributes: [attr(SendAttr.PATH, 'd/up/x')] } as never), 'a symlink it made is still known');

  // Over a parent, an unlinked name must hide what the parent had there, so that one entry stays.
  const over = new SendStreamSymlinks((p) => (p === 'up' ? 'symlink' : 'missing'));
  over.start(PARENT);
  over.visit({ cmd: SendCmd.UNLINK, attributes: [attr(SendAttr.PATH, 'up')] } as never);
  assert.equal(over.visit({ cmd: SendCmd.WRITE, attributes: [attr(SendAttr.PATH, 'up/x')] } as never), undefined, 'the parent\'s symlink is gone once unlinked');
  assert.equal(over.tracked, 1);
});

test('the refusal names the command, the attribute that reaches through the symlink and its path', async () => {
  const err = await outcome((b) => rename(b.symlink('up', '/').mkfileAt('f'), 'f', 'up/mine'), FULL);
  assert.ok(err instanceof SendStreamPolicyError, String(err));
  assert.equal(err.details.attribute, 'PATH_TO');
  assert.equal(err.details.commandName, 'RENAME');
  assert.match(err.message, /\(RENAME\) of the btrfs send stream has PATH_TO "up\/mine", which could leave the snapshot/);
});
