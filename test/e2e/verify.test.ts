/**
 * `snapferry verify` on real btrfs against a real server (issue 18): an identical copy verifies with kilobytes on
 * the line; a server's copy changed by hand (made writable) is caught, each difference named, with the differences
 * exit code; another client's snapshot and job are not found; the server's limits answer 429; bad batches 400.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { VERIFY_LIMITS, routes } from '../../core/protocol.ts';
import { aliceBobAdmin, createPair, recordingReporter, until } from './harness.ts';
import { ServerLayout } from '../../server/layout.ts';
import { writeWithReserve } from '../../server/catalog-reserve.ts';
import { PRUNED_REASON } from '../../server/retention.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');
const snapferry = (args: string[], env: Record<string, string> = {}) => execa('node', [BIN, ...args], { reject: false, timeout: 240_000, env });
/** `snapferry verify` with this machine's digests kept in the test's own filesystem. */
const verifyCli = (pair: { client: { mountPoint: string } }, args: string[]) => snapferry(['verify', '--digest-cache', path.join(pair.client.mountPoint, 'digest-cache'), ...args]);
const verifyTest = { ...rootOnly, timeout: 300_000 };

/** `count` small files in nested folders: a tree of thousands of entries. */
async function manyFiles(dir: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const sub = path.join(dir, 'many', `d${String(i % 40).padStart(2, '0')}`);
    if (i < 40) await fs.mkdir(sub, { recursive: true });
    await fs.writeFile(path.join(sub, `f${String(i).padStart(5, '0')}`), `file ${i}\n`.repeat((i % 7) + 1));
  }
}

interface JsonOutcome {
  event: string;
  snapshot: string;
  entries: number;
  bytes: string;
  lineBytes: number;
  differences: { path: string; differs: string[] }[];
}

function outcomes(stdout: string): JsonOutcome[] {
  return stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as JsonOutcome).filter((e) => e.event === 'verified' || e.event === 'differs');
}

/** One JSON request to the server's API with a token: its status, headers and parsed body. */
function jsonCaller(url: string) {
  return async (token: string, method: string, route: string, body?: unknown) => {
    const res = await fetch(`${url}${route}`, {
      method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
  };
}

test('verify: an identical copy costs kilobytes and exits 0; a copy changed by hand names each difference and exits 3', verifyTest, async (t) => {
  const pair = await createPair(t, { fillMB: 24, seed: 'verify' });
  await manyFiles(pair.source, 3000);
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0 }, recordingReporter());

  const text = await verifyCli(pair, ['--server', server.url, '--volume', 'v', s1]);
  assert.equal(text.exitCode, EXIT.ok, text.stderr);
  assert.match(text.stdout, /^verified: s1 identical \(\d{4,} entries, [\d.]+ MiB; [\d.]+ (B|KiB) on the line\)$/m);

  const json = await verifyCli(pair, ['--server', server.url, '--volume', 'v', '--json', pair.snaps]);
  assert.equal(json.exitCode, EXIT.ok, json.stderr);
  const [same] = outcomes(json.stdout);
  assert.equal(same?.event, 'verified');
  assert.ok(same.entries > 3000, `entries: ${same.entries}`);
  assert.ok(Number(same.bytes) > 20 * 1024 * 1024, `bytes: ${same.bytes}`);
  t.diagnostic(`identical: ${same.entries} entries, ${same.bytes} bytes, ${same.lineBytes} bytes on the line`);
  // Kilobytes for tens of MB in thousands of files: the start, a few polls, the release.
  assert.ok(same.lineBytes > 0 && same.lineBytes < 16 * 1024, `bytes on the line: ${same.lineBytes}`);

  // The server's copy, changed by hand.
  const copy = pair.receivedPath('v', 's1');
  await btrfs.setReadonly(copy, false, { force: true });
  const big = path.join(copy, 'random', 'r-001.bin');
  // One flipped byte, its mtime put back: what bit rot or a careless tool leaves.
  const handle = await fs.open(big, 'r+');
  const one = Buffer.alloc(1);
  await handle.read(one, 0, 1, 12345);
  one[0] = one[0]! ^ 0xff;
  await handle.write(one, 0, 1, 12345);
  await handle.close();
  await execa('touch', ['-m', '-r', path.join(s1, 'random', 'r-001.bin'), big]);
  await fs.chmod(path.join(copy, 'many', 'd07', 'f00007'), 0o600);
  await fs.rm(path.join(copy, 'many', 'd13', 'f00013'));
  await fs.writeFile(path.join(copy, 'many', 'd21', 'added'), 'not in the snapshot\n');
  await fs.rm(path.join(copy, 'links', 'dangling'));
  await fs.symlink('elsewhere', path.join(copy, 'links', 'dangling'));
  await fs.chown(path.join(copy, 'many', 'd30', 'f00030'), 4321, 4321);
  await execa('setfattr', ['-n', 'user.sneaky', '-v', 'yes', path.join(copy, 'many', 'd31', 'f00031')]);
  await btrfs.setReadonly(copy, true, { force: true });

  const found = await verifyCli(pair, ['--server', server.url, '--volume', 'v', '--json', s1]);
  assert.equal(found.exitCode, EXIT.differences, found.stderr);
  const [diff] = outcomes(found.stdout);
  assert.equal(diff?.event, 'differs');
  const byPath = new Map(diff.differences.map((d) => [d.path, d.differs]));
  assert.deepEqual(byPath.get('random/r-001.bin'), ['content']);
  assert.deepEqual(byPath.get('many/d07/f00007'), ['mode']);
  assert.deepEqual(byPath.get('many/d13/f00013'), ['missing']);
  assert.deepEqual(byPath.get('many/d21/added'), ['extra']);
  assert.ok(byPath.get('links/dangling')?.includes('target'), JSON.stringify(byPath.get('links/dangling')));
  assert.ok(byPath.get('many/d30/f00030')?.includes('owner'), JSON.stringify(byPath.get('many/d30/f00030')));
  assert.ok(byPath.get('many/d31/f00031')?.includes('xattrs'), JSON.stringify(byPath.get('many/d31/f00031')));
  // Directories whose entries changed differ in their mtime too; nothing else differs.
  for (const [p, differs] of byPath) {
    if (['random/r-001.bin', 'many/d07/f00007', 'many/d13/f00013', 'many/d21/added', 'links/dangling', 'many/d30/f00030', 'many/d31/f00031'].includes(p)) continue;
    assert.deepEqual(differs, ['mtime'], `${p}: ${differs.join(', ')}`);
    assert.ok(['many/d13', 'many/d21', 'links'].includes(p), `unexpected difference at ${p}`);
  }
  t.diagnostic(`${diff.differences.length} differences found with ${diff.lineBytes} bytes on the line`);
  // The way down: the top, the folders on the way and their children's digests, about 60 entries each.
  assert.ok(diff.lineBytes < 96 * 1024, `bytes on the line: ${diff.lineBytes}`);

  const readable = await verifyCli(pair, ['--server', server.url, '--volume', 'v', s1]);
  assert.equal(readable.exitCode, EXIT.differences);
  assert.match(readable.stdout, /^DIFFERS: s1: /m);
  assert.match(readable.stdout, /^ {2}random\/r-001\.bin: content differs$/m);
  assert.match(readable.stdout, /^ {2}many\/d07\/f00007: mode 0644 here, 0600 on the server$/m);
  assert.match(readable.stdout, /^ {2}many\/d13\/f00013: missing on the server/m);
  assert.match(readable.stdout, /^ {2}many\/d21\/added: extra on the server/m);
  assert.match(readable.stderr, /differs in s1/);
});

test('verify: another client\'s snapshot and job are not found, an admin names the client, limits answer 429, bad batches 400', verifyTest, async (t) => {
  const tokens = await aliceBobAdmin(t);
  const pair = await createPair(t, { fillMB: 2, seed: 'verify-owners' });
  const server = await pair.startServer({ tokensFile: tokens.file, verify: { maxPerClient: 1, maxTotal: 2 } });
  const s1 = await pair.snapshot('s1');
  const s2 = await pair.snapshot('s2');
  await push({ server: server.url, volume: 'v', snapshots: [s1, s2], retries: 0, headers: { authorization: `Bearer ${tokens.alice}` } }, recordingReporter());

  const call = jsonCaller(server.url);

  const mine = await call(tokens.alice, 'POST', routes.verify, { volume: 'v', snapshot: 's1' });
  assert.equal(mine.status, 200, JSON.stringify(mine.body));
  const id = mine.body.id as string;

  // Bob: alice's snapshot answers exactly like one that does not exist, and so does her job.
  const hers = await call(tokens.bob, 'POST', routes.verify, { volume: 'v', snapshot: 's1' });
  const none = await call(tokens.bob, 'POST', routes.verify, { volume: 'v', snapshot: 'no-such' });
  assert.equal(hers.status, 404);
  assert.equal(none.status, 404);
  assert.equal(hers.body.error.code, none.body.error.code);
  assert.equal(hers.body.error.message, none.body.error.message.replace('no-such', 's1'));
  // A client token cannot name another client: refused whoever it names, so the answer tells nothing of alice.
  const hersAsClient = await call(tokens.bob, 'POST', `${routes.verify}?client=alice`, { volume: 'v', snapshot: 's1' });
  const nobodyAsClient = await call(tokens.bob, 'POST', `${routes.verify}?client=nobody`, { volume: 'v', snapshot: 's1' });
  assert.deepEqual([hersAsClient.status, hersAsClient.body.error.code], [403, 'forbidden']);
  assert.equal(hersAsClient.body.error.message, nobodyAsClient.body.error.message.replace('nobody', 'alice'));
  for (const [method, route] of [['GET', routes.verifyJob(id)], ['DELETE', routes.verifyJob(id)], ['POST', routes.verifyRecords(id)]] as const) {
    const r = await call(tokens.bob, method, route, method === 'POST' ? { paths: [''] } : undefined);
    assert.equal(r.status, 404, `${method} ${route}`);
    const missing = await call(tokens.bob, method, route.replace(id, '0'.repeat(32)), method === 'POST' ? { paths: [''] } : undefined);
    assert.equal(r.body.error.message.replace(id, '0'.repeat(32)), missing.body.error.message);
  }

  // Alice's second snapshot is over her limit of one job: 429, with when to come back.
  const second = await call(tokens.alice, 'POST', routes.verify, { volume: 'v', snapshot: 's2' });
  assert.equal(second.status, 429, JSON.stringify(second.body));
  assert.equal(second.body.error.code, 'too_many_verifies');
  assert.equal(second.body.error.retryable, true);
  assert.ok(Number(second.headers.get('retry-after')) > 0);
  // The same snapshot again joins the job there (a job of its own would be over her limit), with a hold of its own.
  const again = await call(tokens.alice, 'POST', routes.verify, { volume: 'v', snapshot: 's1' });
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.notEqual(again.body.id, id);

  // The admin names the client (a second job: the total limit is 2), and sees alice's job.
  const unnamed = await call(tokens.admin, 'POST', routes.verify, { volume: 'v', snapshot: 's2' });
  assert.equal(unnamed.status, 400);
  assert.match(unnamed.body.error.message, /\?client=NAME \(snapferry verify --client NAME\)/, 'says how, by curl and by the command');
  const admin = await call(tokens.admin, 'POST', `${routes.verify}?client=alice`, { volume: 'v', snapshot: 's1' });
  assert.equal(admin.status, 200, JSON.stringify(admin.body));
  assert.equal((await call(tokens.admin, 'GET', routes.verifyJob(id))).body.client, 'alice');

  // Bad batches: 400 invalid_input, not retryable.
  const tooMany = await call(tokens.alice, 'POST', routes.verifyRecords(id), { paths: Array.from({ length: VERIFY_LIMITS.maxPathsPerRequest + 1 }, (_, i) => `p${i}`) });
  assert.equal(tooMany.status, 400);
  assert.equal(tooMany.body.error.code, 'invalid_input');
  assert.equal(tooMany.body.error.retryable, false);
  const huge = await call(tokens.alice, 'POST', routes.verifyChildren(id), { dirs: [{ path: 'x'.repeat(VERIFY_LIMITS.maxBodyBytes) }] });
  assert.equal(huge.status, 400);
  assert.match(huge.body.error.message, /over \d+ bytes/);
  const notJson = await call(tokens.alice, 'POST', routes.verifyRecords(id), 'just a string');
  assert.equal(notJson.status, 400);

  // Held until each of its three starts (alice's two, the admin's) has released its hold; then the slot is free again.
  assert.equal((await call(tokens.alice, 'DELETE', routes.verifyJob(id))).status, 204);
  assert.equal((await call(tokens.admin, 'DELETE', routes.verifyJob(admin.body.id))).status, 204);
  assert.equal((await call(tokens.alice, 'GET', routes.verifyJob(again.body.id))).status, 200, 'alice\'s other start still has it');
  assert.equal((await call(tokens.alice, 'DELETE', routes.verifyJob(again.body.id))).status, 204);
  assert.equal((await call(tokens.alice, 'GET', routes.verifyJob(again.body.id))).status, 404, 'released by every start');
  assert.equal((await call(tokens.alice, 'POST', routes.verify, { volume: 'v', snapshot: 's2' })).status, 200);
});

test('verify: each start releases its own hold on a shared job, once; an admin token releases no client\'s hold', verifyTest, async (t) => {
  const tokens = await aliceBobAdmin(t);
  const pair = await createPair(t, { fillMB: 2, seed: 'verify-holds' });
  const server = await pair.startServer({ tokensFile: tokens.file });
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0, headers: { authorization: `Bearer ${tokens.alice}` } }, recordingReporter());
  const call = jsonCaller(server.url);
  const start = { volume: 'v', snapshot: 's1' };

  // A timer's run and a verify by hand of alice's, and the admin's --client: three starts of one job.
  const timer = await call(tokens.alice, 'POST', routes.verify, start);
  const byHand = await call(tokens.alice, 'POST', routes.verify, start);
  const admin = await call(tokens.admin, 'POST', `${routes.verify}?client=alice`, start);
  for (const s of [timer, byHand, admin]) assert.equal(s.status, 200, JSON.stringify(s.body));

  // An admin token writes nothing of a client's: alice's holds stay hers.
  for (const hers of [timer, byHand]) {
    const refused = await call(tokens.admin, 'DELETE', routes.verifyJob(hers.body.id));
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'forbidden');
    assert.match(refused.body.error.message, /admin token/);
  }
  assert.equal((await call(tokens.alice, 'GET', routes.verifyJob(timer.body.id))).status, 200, 'the admin took nothing from alice');
  // Its own hold it releases, once: a second release takes no one else's.
  assert.equal((await call(tokens.admin, 'DELETE', routes.verifyJob(admin.body.id))).status, 204);
  assert.equal((await call(tokens.admin, 'DELETE', routes.verifyJob(admin.body.id))).status, 404);

  // The timer's run releases twice (a retried DELETE): the verify by hand still has the job, and finishes.
  assert.equal((await call(tokens.alice, 'DELETE', routes.verifyJob(timer.body.id))).status, 204);
  assert.equal((await call(tokens.alice, 'DELETE', routes.verifyJob(timer.body.id))).status, 404);
  await until('the server\'s digest', async () => (await call(tokens.alice, 'GET', routes.verifyJob(byHand.body.id))).body.state === 'ready');
  const records = await call(tokens.alice, 'POST', routes.verifyRecords(byHand.body.id), { paths: [''] });
  assert.equal(records.status, 200, JSON.stringify(records.body));
  assert.equal(records.body.records[0].record.kind, 'dir');
  assert.equal((await call(tokens.alice, 'DELETE', routes.verifyJob(byHand.body.id))).status, 204);
  assert.equal((await call(tokens.alice, 'GET', routes.verifyJob(byHand.body.id))).status, 404, 'released by its last start');
});

test('verify: the server keeps each digest beside the catalog and starts from it or from the parent\'s; --read-data reads again; a pruned snapshot drops its digest', verifyTest, async (t) => {
  const pair = await createPair(t, { fillMB: 8, seed: 'verify-saved' });
  // The server prunes after it recorded the snapshot received, so a push can be back before the pruning is done; here
  // the record of s1's removal, between its subvolume's delete and its digest's, is held a while to show it.
  let held = false;
  const catalogWriter = async (file: string, text: string): Promise<void> => {
    if (!held && text.includes(PRUNED_REASON)) {
      held = true;
      await new Promise((r) => setTimeout(r, 2000));
    }
    await writeWithReserve(file, text);
  };
  const server = await pair.startServer({ retention: () => ({ last: 2 }), catalogWriter });
  const layout = new ServerLayout(pair.root);
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0 }, recordingReporter());

  const verifyJson = async (...args: string[]) => {
    const r = await verifyCli(pair, ['--server', server.url, '--volume', 'v', '--json', ...args]);
    assert.equal(r.exitCode, EXIT.ok, r.stderr);
    const notes = r.stdout.split('\n').filter((l) => l.includes('"note"')).map((l) => (JSON.parse(l) as { message: string }).message);
    return { outcome: outcomes(r.stdout)[0]!, notes };
  };
  const first = await verifyJson(s1);
  assert.equal(first.outcome.event, 'verified');
  assert.deepEqual(first.notes, [], 'nothing to start from');
  const uuid = (await btrfs.subvolumeShow(s1)).uuid;
  const saved = layout.digestFile('default' as never, 'v' as never, uuid as never);
  await fs.access(saved);
  const again = await verifyJson(s1);
  assert.deepEqual(again.notes, ['s1: this machine starts from its saved digest of this snapshot', 's1: the server started from the saved digest of this snapshot']);

  await fs.writeFile(path.join(pair.source, 'new-file'), 'new\n');
  const s2 = await pair.snapshot('s2');
  await push({ server: server.url, volume: 'v', snapshots: [s2], retries: 0 }, recordingReporter());
  // The folder of snapshots: the newest both sides hold, s2, each side starting from its digest of s1.
  const incremental = await verifyJson(pair.snaps);
  assert.equal(incremental.outcome.snapshot, 's2');
  assert.deepEqual(incremental.notes, ['s2: this machine starts from its saved digest of s1', 's2: the server started from the saved digest of its parent']);
  const reread = await verifyJson('--read-data', s2);
  assert.deepEqual(reread.notes, [], '--read-data starts from nothing');

  // s3 pushed: the policy keeps the last 2, so s1 goes, and its digest with it.
  await fs.writeFile(path.join(pair.source, 'another-file'), 'another\n');
  const s3 = await pair.snapshot('s3');
  await push({ server: server.url, volume: 'v', snapshots: [s3], retries: 0 }, recordingReporter());
  // The push ends when s3 is recorded received; the pruning that follows is done when the server is idle.
  await server.service.idle();
  assert.equal(held, true, "s1's removal went through the writer that holds it");
  await assert.rejects(fs.access(pair.receivedPath('v', 's1')), 's1 was pruned');
  await assert.rejects(fs.access(saved), "s1's digest went with it");
  await fs.access(layout.digestFile('default' as never, 'v' as never, (await btrfs.subvolumeShow(s2)).uuid as never));
});
