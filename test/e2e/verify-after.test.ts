/**
 * Verify where it runs by itself (issue 18), on real btrfs against a real server: `run` with `verify:` checks after
 * its push (the newest, then a rotating sample), and catches a server copy changed by hand that an incremental was
 * built on; `restore` ends with the same check, and a restore whose server copy differs from what it received fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createBtrfs, mutate, rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { EXIT, exitCodeFor } from '../../client/exit-codes.ts';
import { push } from '../../client/push/push.ts';
import { restore } from '../../client/restore/restore.ts';
import type { RunConfig } from '../../client/run/run.ts';
import { createPair, recordingReporter } from './harness.ts';
import { runAt } from './run-helpers.ts';

const T = ['2026-11-01T10:00:00Z', '2026-11-01T11:00:00Z', '2026-11-01T12:00:00Z', '2026-11-01T13:00:00Z'];
const NAME = ['home.20261101T100000Z', 'home.20261101T110000Z', 'home.20261101T120000Z'];
const slow = { ...rootOnly, timeout: 300_000 };

/** Changes the server's copy of a snapshot by hand: one byte of a file, written through a writable subvolume. */
async function changeByHand(copy: string, file: string): Promise<void> {
  await btrfs.setReadonly(copy, false, { force: true });
  const p = path.join(copy, file);
  const text = await fs.readFile(p);
  text[0] = text[0]! ^ 0x01;
  await fs.writeFile(p, text);
  await btrfs.setReadonly(copy, true, { force: true });
}

function changeByHandNow(copy: string, file: string): void {
  execFileSync('btrfs', ['property', 'set', '-f', '-ts', copy, 'ro', 'false']);
  const p = path.join(copy, file);
  const text = readFileSync(p);
  text[0] = text[0]! ^ 0x01;
  writeFileSync(p, text);
  execFileSync('btrfs', ['property', 'set', '-ts', copy, 'ro', 'true']);
}

test('run with verify: newest checks each push; { sample: 1 } goes round the older ones; a server copy changed by hand fails the run with exit 3', slow, async (t) => {
  const pair = await createPair(t, { fillMB: 4, seed: 'verify-run' });
  const server = await pair.startServer();
  const runIn = runAt(path.join(pair.client.mountPoint, `run-${process.pid}.lock`));
  const digestCache = path.join(pair.client.mountPoint, 'digest-cache');
  const run: typeof runIn = (config, at, extra = {}) => runIn(config, at, { digestCache, ...extra });
  const home = { source: pair.source, snapshotDir: pair.snaps };

  const r1 = await run({ server: server.url, volumes: { home }, verify: { sample: 0, readData: false } }, T[0]!);
  assert.equal(r1.exitCode, EXIT.ok, [...r1.lines, ...r1.notes].join('\n'));
  assert.match(r1.lines[0]!, new RegExp(`^home: snapshot ${NAME[0]}, pushed 1 \\(.+\\), verified ${NAME[0]} \\([\\d.]+ (B|KiB) on the line\\), pruned 0$`));

  // A sample of one older snapshot besides the newest, another one each run.
  const sample: RunConfig = { server: server.url, volumes: { home: { ...home, verify: { sample: 1, readData: false } } } };
  await mutate(pair.source, 'verify-run-1');
  const r2 = await run(sample, T[1]!);
  assert.match(r2.lines[0]!, new RegExp(`verified ${NAME[1]}, ${NAME[0]} \\(`), r2.lines[0]);
  await mutate(pair.source, 'verify-run-2');
  const r3 = await run(sample, T[2]!);
  assert.equal(r3.exitCode, EXIT.ok, [...r3.lines, ...r3.notes].join('\n'));
  const older = /verified [^,]+, (\S+) \(/.exec(r3.lines[0]!)?.[1];
  assert.ok(older === NAME[0] || older === NAME[1], r3.lines[0]);
  await mutate(pair.source, 'verify-run-3');
  const r4 = await run({ ...sample, volumes: { home: { ...home, verify: { sample: 1, readData: false } } } }, '2026-11-01T12:30:00Z');
  const next = /verified [^,]+, (\S+) \(/.exec(r4.lines[0]!)?.[1];
  assert.ok(next !== undefined && next !== older, `the rotation moved on: ${older} then ${next}`);

  // The server's copy of the newest, changed by hand (btrfs then drops its Received UUID, so nothing can be received
  // on top of it); the next run, with no snapshot due and nothing to push, verifies the newest and finds it.
  const newest = (await fs.readdir(pair.snaps)).sort().at(-1)!;
  await changeByHand(pair.receivedPath('home', newest), 'text/t-000.txt');
  const r5 = await run({ server: server.url, volumes: { home: { ...home, snapshotEvery: 86_400_000 } }, verify: { sample: 0, readData: false } }, T[3]!);
  assert.equal(r5.exitCode, EXIT.differences, [...r5.lines, ...r5.notes].join('\n'));
  assert.match(r5.lines[0]!, new RegExp(`pushed 0 \\(the server holds the newest\\), verify failed: the server's copy differs in ${newest}`));
  assert.ok(r5.notes.some((n) => n.startsWith('home:   text/t-000.txt: content differs')), r5.notes.join('\n'));
});

test('run keeps a snapshot whose server copy its verify found different, however old: the local one is the only copy as sent', slow, async (t) => {
  const pair = await createPair(t, { fillMB: 2, seed: 'verify-keep' });
  const server = await pair.startServer();
  const run = runAt(path.join(pair.client.mountPoint, `run-${process.pid}.lock`));
  const digestCache = path.join(pair.client.mountPoint, 'digest-cache');
  const home = { source: pair.source, snapshotDir: pair.snaps, retention: { last: 1 }, verify: { sample: 1, readData: false } };
  const config: RunConfig = { server: server.url, volumes: { home } };

  const r1 = await run(config, T[0]!, { digestCache });
  assert.equal(r1.exitCode, EXIT.ok, [...r1.lines, ...r1.notes].join('\n'));
  changeByHandNow(pair.receivedPath('home', NAME[0]!), 'text/t-000.txt');
  await mutate(pair.source, 'verify-keep-1');
  // NAME[1] is taken and pushed, and retention (last: 1) would take NAME[0]; the sample verifies NAME[0] and finds it
  // changed on the server, so the local NAME[0] is the only good copy of that point in time.
  const r2 = await run(config, T[1]!, { digestCache });
  assert.equal(r2.exitCode, EXIT.differences, [...r2.lines, ...r2.notes].join('\n'));
  assert.match(r2.lines[0]!, new RegExp(`verify failed: the server's copy differs in ${NAME[0]}`), r2.lines[0]);
  assert.ok((await fs.readdir(pair.snaps)).includes(NAME[0]!), `${NAME[0]} was pruned: ${r2.lines[0]}`);
  assert.match(r2.lines[0]!, /pruned 0/, r2.lines[0]);

  // A later run without verify keeps it too, for as long as the server flags its copy as changed.
  await mutate(pair.source, 'verify-keep-2');
  const r3 = await run({ server: server.url, volumes: { home: { ...home, verify: null } } }, T[2]!, { digestCache });
  assert.ok((await fs.readdir(pair.snaps)).includes(NAME[0]!), `${NAME[0]} was pruned later: ${[...r3.lines, ...r3.notes].join('\n')}`);
});

test('restore ends with the check against the server\'s digest: identical after a good restore, and a failure when the server\'s copy differs', slow, async (t) => {
  const pair = await createPair(t, { fillMB: 6, seed: 'verify-restore' });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await mutate(pair.source, 'verify-restore');
  const s2 = await pair.snapshot('s2');
  await push({ server: server.url, volume: 'v', snapshots: [s1, s2], retries: 0 }, recordingReporter());
  const fresh = await createBtrfs(t, { sizeMiB: 512 });
  const dest = path.join(fresh.mountPoint, 'restored');
  await fs.mkdir(dest);

  const report = recordingReporter();
  const full = await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: dest }, report);
  assert.equal(full.restored, true);
  assert.ok(full.verifiedLineBytes !== null && full.verifiedLineBytes < 16 * 1024, `on the line: ${full.verifiedLineBytes}`);
  assert.ok(report.notes.some((n) => /^s1: identical to the server's copy \(\d+ entries; .* on the line\)$/.test(n)), report.notes.join('\n'));

  // The check holds the restored tree against the server's digest of its copy. To see it fail, the server's copy
  // is changed by hand between the receive and the check (synchronously, in the note that says the check starts):
  // the restored tree is then what the server sent, and no longer what the server holds.
  const copy = pair.receivedPath('v', 's2');
  const failing = recordingReporter();
  const restoring = restore({ server: server.url, volume: 'v', snapshot: 's2', destDir: dest }, {
    ...failing,
    note: (m) => {
      failing.note(m);
      if (m.startsWith('s2: checking the restored snapshot')) changeByHandNow(copy, 'text/t-001.txt');
    },
  });
  const err = await restoring.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof Error, 'the restore failed');
  assert.equal(exitCodeFor(err), EXIT.differences, String(err));
  assert.match(err.message, /the restored s2 differs from the server's copy in 1 path\(s\) \(listed above\); it is kept for inspection at .*\/restored\/.snapferry-differs-s2, not under its name/);
  assert.equal(await fs.stat(path.join(dest, 's2')).then(() => true, () => false), false, 'the copy that differs does not have its name');
  // An incremental restore: the local parent, which may have been changed here, is what to rule out first.
  assert.match(err.message, /restore it in full: it was received on .*\/restored\/s1 here, which may have been changed .* if a full restore differs too, have the server's admin check/);
  assert.ok(failing.notes.some((n) => n.startsWith('  text/t-001.txt: content differs')), failing.notes.join('\n'));
});
