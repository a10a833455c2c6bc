/**
 * The policy's symlink rule (core/wire/sendstream-symlinks.ts) against streams this machine's `btrfs send` writes:
 * none may be refused. Full and incremental sends, protocol 1 and 2, of trees churned fsstress-style
 * (test/fixtures/churn.ts: symlinks made, renamed, renamed over, hard links, names that change kind) and of the
 * swaps that make btrfs send orphanize and reorder (a folder and a symlink trading names, a folder of symlinks moved
 * under a name a symlink had, a symlink turned into a folder). Incremental streams are checked with the parent's
 * entries looked up as a restore does (core/receive/parent-entries.ts). (The e2e push and restore tests receive such
 * streams for real, through the same policy.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { createBtrfs, fillVaried, rootOnly, snapshotReadonly } from '../fixtures/btrfs.ts';
import { churn } from '../fixtures/churn.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { SendStreamCheck } from '../../core/wire/sendstream-check.ts';
import type { SendStreamPolicy } from '../../core/wire/sendstream-policy.ts';
import { parentEntries } from '../../core/receive/parent-entries.ts';

/** Sends `snap` (from `parent`) and checks the stream against the policy a restore uses; returns how many commands. */
async function sendAndCheck(snap: string, parent: string | null, proto: number): Promise<number> {
  const uuidOf = async (p: string) => (await btrfs.subvolumeShow(p)).uuid;
  const parentUuid = parent === null ? null : await uuidOf(parent);
  const policy: SendStreamPolicy = {
    parentUuid,
    cloneSources: parentUuid === null ? [] : [parentUuid],
    allowDevices: true,
    allowSetuid: true,
    ...(parent === null ? {} : { parentEntries: parentEntries(parent) }),
  };
  const args = ['send', '-q', '--proto', String(proto), ...(proto >= 2 ? ['--compressed-data'] : []), ...(parent === null ? [] : ['-p', parent]), snap];
  const child = execa('btrfs', args, { buffer: false, stdout: 'pipe' });
  let commands = 0;
  const check = new SendStreamCheck({ policy, onCommand: () => void commands++ });
  await pipeline(child.stdout, check, new Writable({ write: (_c, _e, cb) => cb() }));
  await child;
  return commands;
}

async function swaps(dir: string, round: number): Promise<void> {
  const at = (rel: string) => path.join(dir, rel);
  if (round === 0) {
    await fs.mkdir(at('tree/links'), { recursive: true });
    await fs.symlink('/', at('tree/links/root'));
    await fs.symlink('../..', at('tree/links/up'));
    await fs.writeFile(at('tree/file'), 'f\n');
    await fs.symlink('tree', at('alias'));
    await fs.symlink('/etc', at('turns-into-dir'));
    return;
  }
  // A folder and a symlink trade names; the folder of symlinks moves under the symlink's old name.
  await fs.rename(at('tree'), at('tmp'));
  await fs.rename(at('alias'), at('tree'));
  await fs.rename(at('tmp'), at('alias'));
  // A symlink turns into a folder, and back into a symlink the round after.
  await fs.rm(at('turns-into-dir'), { recursive: true });
  if (round % 2 === 1) {
    await fs.mkdir(at('turns-into-dir'));
    await fs.writeFile(at(`turns-into-dir/r${round}`), 'x\n');
  } else {
    await fs.symlink('/', at('turns-into-dir'));
  }
  await fs.symlink('/', at(`alias/links/new${round}`));
  await fs.link(at('alias/links/root'), at(`alias/hard${round}`)).catch(() => undefined);
}

test('every stream btrfs send writes of churned trees with symlinks passes the symlink rule, full and incremental', { ...rootOnly, timeout: 300_000 }, async (t) => {
  const fsx = await createBtrfs(t, { sizeMiB: 512 });
  const work = path.join(fsx.mountPoint, 'work');
  const snaps = path.join(fsx.mountPoint, 'snaps');
  await btrfs.createSubvolume(work);
  await fs.mkdir(snaps);
  // Churn and the swaps each in a folder of their own, so the churn cannot undo what the swaps expect.
  await fs.mkdir(path.join(work, 'churn'));
  await fs.mkdir(path.join(work, 'swaps'));
  await fillVaried(path.join(work, 'churn'), { seed: 'symlinks', sizeMB: 2 });
  const taken: string[] = [];
  for (let round = 0; round < 4; round++) {
    await swaps(path.join(work, 'swaps'), round);
    await churn(path.join(work, 'churn'), { seed: `symlinks-${round}`, operations: 300 });
    const snap = path.join(snaps, `s${round}`);
    await snapshotReadonly(work, snap);
    taken.push(snap);
  }
  for (const proto of [1, 2]) {
    assert.ok((await sendAndCheck(taken[0]!, null, proto)) > 10);
    for (let i = 1; i < taken.length; i++) assert.ok((await sendAndCheck(taken[i]!, taken[i - 1]!, proto)) > 1, `s${i} from s${i - 1}`);
    // Across rounds too: more changed at once, more orphans.
    assert.ok((await sendAndCheck(taken[3]!, taken[0]!, proto)) > 1);
  }
  // The symlinks are really there: a rule that passed these because it saw none would prove nothing.
  const found = await execa('find', [taken[3]!, '-type', 'l']);
  assert.ok(found.stdout.split('\n').length > 5, found.stdout);
});
