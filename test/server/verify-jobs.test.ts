/**
 * The verify jobs (server/verify/jobs.ts) with a fake digest engine, no btrfs: one job per snapshot, the limits,
 * idle release, a --read-data start while a plain digest runs; and the paging of big directories, from the jobs'
 * answers through the client's RemoteTree (client/verify/remote.ts), which must put every page back together.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SnapferryError } from '../../core/errors.ts';
import type { SafeName } from '../../core/names.ts';
import type { Caller } from '../../server/auth.ts';
import { VERIFY_LIMITS, routes } from '../../core/protocol.ts';
import type { ChildDigest, EntryRecord, TreeDigestSource, TreePath } from '../../core/tree-digest/types.ts';
import { ServerApi } from '../../client/http/api.ts';
import { RemoteTree } from '../../client/verify/remote.ts';
import { ServerLayout } from '../../server/layout.ts';
import { silentLogger } from '../../server/log.ts';
import { VerifyJobs, type VerifyLimits } from '../../server/verify/jobs.ts';
import { SavedDigests } from '../../server/verify/saved-digests.ts';
import type { DigestEngine } from '../../server/verify/engine.ts';
import { statusOf } from '../../server/http-errors.ts';
import { parseChildren, parseRecords } from '../../server/verify/request.ts';

const alice = 'alice' as SafeName;
const asAlice: Caller = { role: 'client', client: alice };
const asBob: Caller = { role: 'client', client: 'bob' as SafeName };
const ops: Caller = { role: 'admin', name: 'ops' as SafeName };
const v = 'v' as SafeName;
const UUID = ['11111111-1111-1111-1111-111111111111', '22222222-2222-2222-2222-222222222222', '33333333-3333-3333-3333-333333333333'];

/** A tree whose top holds `n` files and a folder `sub` of 3. */
function fakeTree(n: number): TreeDigestSource {
  const record = (kind: 'dir' | 'file'): EntryRecord => ({ kind, mode: 0o644, uid: 0, gid: 0, size: kind === 'file' ? '1' : null, mtime: '1.000000000', rdev: null, target: null, xattrs: null, content: null, link: null });
  const top: ChildDigest[] = Array.from({ length: n }, (_, i) => ({ name: `f${String(i).padStart(6, '0')}`, kind: 'file', digest: 'ab' }));
  top.push({ name: 'sub', kind: 'dir', digest: 'cd' });
  const dirs = new Map<TreePath, ChildDigest[]>([['', top], ['sub', [1, 2, 3].map((i) => ({ name: `s${i}`, kind: 'file' as const, digest: 'ef' }))]]);
  return {
    summary: () => Promise.resolve({ digest: 'ff', entries: n + 5, bytes: String(n + 3) }),
    children: (paths) => Promise.resolve(new Map(paths.filter((p) => dirs.has(p)).map((p) => [p, dirs.get(p)!]))),
    records: (paths) => Promise.resolve(new Map(paths.filter((p) => p === '' || p === 'sub' || /^f\d+$/.test(p)).map((p) => [p, record(p === '' || p === 'sub' ? 'dir' : 'file')]))),
  };
}

/** An engine whose digests finish when the test says (or at once with `tree`). */
function fakeEngine(tree: TreeDigestSource | null) {
  const pending: { resolve: (t: TreeDigestSource) => void; reject: (e: unknown) => void; signal: AbortSignal }[] = [];
  const engine: DigestEngine = {
    digest: (_dir, options) =>
      tree !== null ? Promise.resolve(tree) : new Promise((resolve, reject) => {
        pending.push({ resolve, reject, signal: options.signal });
        options.signal.addEventListener('abort', () => reject(new SnapferryError('cancelled', 'stopped')), { once: true });
      }),
    load: () => Promise.resolve(null),
    save: () => Promise.resolve(),
  };
  return { engine, pending };
}

function jobs(engine: DigestEngine, limits: Partial<VerifyLimits> = {}, now = () => Date.now()) {
  const snapshots = UUID.map((uuid, i) => ({ name: `s${i + 1}`, uuid, serverUuid: uuid, parentUuid: null, receivedAt: '2026-01-01T00:00:00Z', rawBytes: 1, wireBytes: 1, transferId: null }));
  const layout = new ServerLayout('/nonexistent-root');
  const service = {
    snapshots: (client: SafeName) => Promise.resolve({ snapshots: client === alice ? snapshots : [], removed: [] }),
    snapshotPath: (client: SafeName, volume: SafeName, name: SafeName) => layout.snapshotPath(client, volume, name),
    savedDigests: () => new SavedDigests(layout),
  };
  return new VerifyJobs(service as never, engine, silentLogger(), limits, now);
}

const start = (j: VerifyJobs, snapshot: string, readData = false, client = alice, by: Caller = { role: 'client', client }) => j.start({ by, client, volume: v, snapshot: snapshot as SafeName, readData });
const codeOf = async (p: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return (err as SnapferryError).code;
  }
  return null;
};

test('one job per snapshot: a second start joins it, with a hold of its own; another client\'s snapshot is not found', async () => {
  const { engine, pending } = fakeEngine(null);
  const j = jobs(engine);
  const a = await start(j, 's1');
  const b = await start(j, 's1');
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(pending.length, 1, 'one digest for both');
  assert.notEqual(b.id, a.id, 'each start names its own hold');
  assert.equal(await codeOf(start(j, 's1', false, 'bob' as SafeName)), 'not_found');
  assert.equal(await codeOf(() => j.get(asBob, a.id)), 'not_found');
  assert.equal(j.get(ops, a.id).client, 'alice', 'an admin sees whose job it is');
  j.close();
});

test('a job two starts share stays until both release it: the first done does not take it from the other', async () => {
  const tree = fakeTree(3);
  const { engine } = fakeEngine(tree);
  const j = jobs(engine, { maxPerClient: 1 });
  const a = await start(j, 's1');
  const b = await start(j, 's1');
  j.release(asAlice, a.id);
  assert.equal(j.get(asAlice, b.id).id, b.id, 'the second start still has the job after the first released it');
  while (j.get(asAlice, b.id).state === 'digesting') await new Promise((resolve) => setImmediate(resolve));
  const answer = await j.children(asAlice, b.id, parseChildren({ dirs: [{ path: 'sub' }] }));
  assert.deepEqual(answer.children.map((c) => c.entries.length), [3]);
  j.release(asAlice, b.id);
  assert.equal(await codeOf(() => j.get(asAlice, a.id)), 'not_found', 'released by both: gone');
  await start(j, 's2');
  j.close();
});

test('limits per client and in total answer 429 with when to come back; a released job frees its place', async () => {
  const { engine } = fakeEngine(null);
  const j = jobs(engine, { maxPerClient: 2, maxTotal: 2 });
  const a = await start(j, 's1');
  await start(j, 's2');
  const refused = await start(j, 's3').catch((e: SnapferryError) => e);
  assert.ok(refused instanceof SnapferryError);
  assert.equal(statusOf(refused), 429);
  assert.equal(refused.retryable, true);
  assert.ok(Number(refused.details.retryAfterSeconds) > 0);
  j.release(asAlice, a.id);
  await start(j, 's3');
  j.close();
});

test('a job nobody asks about is released, and its digest stopped', async () => {
  let clock = 0;
  const { engine, pending } = fakeEngine(null);
  const j = jobs(engine, { idleMs: 1000 }, () => clock);
  const a = await start(j, 's1');
  clock = 500;
  j.get(asAlice, a.id);
  clock = 1400;
  j.releaseIdle();
  assert.equal(j.get(asAlice, a.id).state, 'digesting', 'asked about 900 ms ago');
  clock = 2500;
  j.releaseIdle();
  assert.equal(await codeOf(() => j.get(asAlice, a.id)), 'not_found');
  assert.equal(pending[0]!.signal.aborted, true);
  j.close();
});

test('--read-data while a plain digest of the snapshot runs: 409 verify_busy, retryable; once it is done, a new job', async () => {
  const { engine, pending } = fakeEngine(null);
  const j = jobs(engine);
  const plain = await start(j, 's1');
  const busy = await start(j, 's1', true).catch((e: SnapferryError) => e);
  assert.equal((busy as SnapferryError).code, 'verify_busy');
  assert.equal(statusOf(busy), 409);
  assert.equal((await start(j, 's1', true).catch(() => null)) === null, true);
  pending[0]!.resolve(fakeTree(3));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(j.get(asAlice, plain.id).state, 'ready');
  const reading = await start(j, 's1', true);
  assert.notEqual(reading.id, plain.id);
  assert.equal(reading.readData, true);
  // A plain start joins a --read-data job: what it reads is as good.
  const joined = await start(j, 's1');
  assert.equal(joined.readData, true);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(pending.length, 2, 'no digest of its own');
  j.close();
});

test('questions before the digest is ready are 409 verify_not_ready (retryable); a failed digest says why', async () => {
  const { engine, pending } = fakeEngine(null);
  const j = jobs(engine);
  const a = await start(j, 's1');
  assert.equal(await codeOf(j.records(asAlice, a.id, [''])), 'verify_not_ready');
  pending[0]!.reject(new SnapferryError('tree_read_failed', 'cannot read'));
  await new Promise((r) => setTimeout(r, 10));
  const failed = j.get(asAlice, a.id);
  assert.equal(failed.state, 'failed');
  assert.equal(failed.error?.code, 'tree_read_failed');
  assert.equal((await start(j, 's1')).id !== a.id, true, 'a failed job is started again');
  j.close();
});

test('bad batches are invalid_input (400): too many paths, a path too long, unknown keys', () => {
  assert.equal(statusOf(catchSync(() => parseRecords({ paths: Array.from({ length: VERIFY_LIMITS.maxPathsPerRequest + 1 }, () => 'a') }))), 400);
  assert.equal(statusOf(catchSync(() => parseRecords({ paths: ['a'.repeat(VERIFY_LIMITS.maxPathLength + 1)] }))), 400);
  assert.equal(statusOf(catchSync(() => parseChildren({ dirs: [{ path: '', extra: 1 }] }))), 400);
  assert.equal(statusOf(catchSync(() => parseChildren(null))), 400);
});

function catchSync(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail('did not throw');
}

test('a directory bigger than one answer comes in pages, and the client puts them back together', async () => {
  const n = VERIFY_LIMITS.maxEntriesPerAnswer * 2 + 123;
  const tree = fakeTree(n);
  const j = jobs(fakeEngine(tree).engine);
  const answers: number[] = [];
  // The client's API over the jobs, without HTTP: each route to its method, JSON both ways, as the app does.
  const fetch = async (url: string, init: { method: string; body?: string }) => {
    const path = new URL(url).pathname;
    const body = init.body === undefined ? undefined : JSON.parse(init.body);
    const id = path.split('/')[3] ?? '';
    let answer: unknown;
    if (path === routes.verify) answer = await j.start({ by: asAlice, client: alice, volume: v, snapshot: body.snapshot, readData: false });
    else if (path === routes.verifyChildren(id)) {
      const a = await j.children(asAlice, id, parseChildren(body));
      answers.push(a.children.reduce((k, c) => k + c.entries.length, 0));
      answer = a;
    } else if (path === routes.verifyRecords(id)) answer = await j.records(asAlice, id, parseRecords(body).paths);
    else answer = j.get(asAlice, id);
    const text = JSON.stringify(answer);
    return { ok: true, status: 200, statusText: 'OK', headers: { get: () => null }, text: () => Promise.resolve(text) };
  };
  const api = new ServerApi({ server: 'http://verify.invalid', transport: { proxy: null, fetch, httpStack: null as never, dropConnections: () => undefined, close: () => Promise.resolve() } });
  const remote = await RemoteTree.start({ api }, { volume: 'v', snapshot: 's1' });
  await new Promise((r) => setTimeout(r, 10));
  const got = await remote.children(['sub', '', 'nothing-here']);
  assert.deepEqual(got.get('')?.map((c) => c.name), (await tree.children([''])).get('')!.map((c) => c.name));
  assert.equal(got.get('sub')?.length, 3);
  assert.equal(got.has('nothing-here'), false);
  assert.ok(answers.length >= 3, `pages: ${answers.join(', ')}`);
  assert.ok(answers.every((k) => k <= VERIFY_LIMITS.maxEntriesPerAnswer), `pages: ${answers.join(', ')}`);
  const records = await remote.records(Array.from({ length: 2500 }, (_, i) => `f${String(i).padStart(6, '0')}`));
  assert.equal(records.size, 2500);
  j.close();
});

test('finished jobs nobody asked about for 30 s give their place to a new verify; digesting or recently asked ones do not', async () => {
  // An interrupted verify (Ctrl-C) leaves its job ready: two of them refused the client's next verify for 10 minutes.
  let clock = 1_000_000;
  const { engine, pending } = fakeEngine(null);
  const j = jobs(engine, { maxPerClient: 2, maxTotal: 4 }, () => clock);
  await start(j, 's1');
  await start(j, 's2');
  pending[0]!.resolve(fakeTree(1));
  await new Promise((r) => setImmediate(r));
  clock += 10_000;
  // s1 is ready but was asked about 10 s ago, s2 still digesting: no place yet.
  assert.equal(statusOf((await start(j, 's3').catch((e: SnapferryError) => e)) as SnapferryError), 429);
  clock += 30_000;
  // s1 is ready and idle for 40 s: it goes; s2, digesting, stays.
  const s3 = await start(j, 's3');
  assert.equal(s3.snapshot, 's3');
  pending[1]!.resolve(fakeTree(1));
  j.close();
});

test('each start releases its own hold, once: a second release by the same start takes nothing from the other', async () => {
  const tree = fakeTree(3);
  const j = jobs(fakeEngine(tree).engine);
  const timer = await start(j, 's1');
  const byHand = await start(j, 's1');
  j.release(asAlice, timer.id);
  // A retried DELETE: the hold is gone, and the job stays for the other start.
  assert.equal(await codeOf(() => j.release(asAlice, timer.id)), 'not_found');
  assert.equal(await codeOf(() => j.get(asAlice, timer.id)), 'not_found', 'a released hold is not asked about again');
  assert.equal(await codeOf(() => j.release(asBob, byHand.id)), 'not_found', 'another client\'s hold is not found');
  while (j.get(asAlice, byHand.id).state === 'digesting') await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual((await j.records(asAlice, byHand.id, ['sub'])).records.map((r) => r.path), ['sub']);
  j.release(asAlice, byHand.id);
  assert.equal(await codeOf(() => j.get(asAlice, byHand.id)), 'not_found', 'released by its last start: gone');
  j.close();
});

test('an admin token releases no client\'s hold, only those it started itself', async () => {
  const j = jobs(fakeEngine(fakeTree(3)).engine, { maxPerClient: 1 });
  const hers = await start(j, 's1');
  const its = await start(j, 's1', false, alice, ops);
  const refused = catchSync(() => j.release(ops, hers.id));
  assert.ok(refused instanceof SnapferryError);
  assert.equal(refused.code, 'forbidden');
  assert.equal(statusOf(refused), 403);
  assert.match(refused.message, /admin token.*releases only those it started itself/);
  assert.equal(j.get(asAlice, hers.id).snapshot, 's1', 'alice still has her job');
  assert.equal(await codeOf(() => j.release(asAlice, its.id)), 'forbidden', 'nor does alice release the admin\'s');
  j.release(ops, its.id);
  assert.equal(j.get(asAlice, hers.id).snapshot, 's1');
  j.release(asAlice, hers.id);
  await start(j, 's2');
  j.close();
});

test('a --read-data start beside a finished plain job leaves that job to the starts that hold it', async () => {
  const { engine, pending } = fakeEngine(null);
  const j = jobs(engine);
  const plain = await start(j, 's1');
  while (pending.length === 0) await new Promise((r) => setImmediate(r));
  pending[0]!.resolve(fakeTree(3));
  while (j.get(asAlice, plain.id).state === 'digesting') await new Promise((r) => setImmediate(r));
  const reading = await start(j, 's1', true);
  while (pending.length < 2) await new Promise((r) => setImmediate(r));
  assert.equal(j.get(asAlice, plain.id).state, 'ready', 'the plain job is still there for its start');
  assert.deepEqual((await j.records(asAlice, plain.id, ['sub'])).records.map((r) => r.path), ['sub']);
  assert.equal(j.get(asAlice, (await start(j, 's1')).id).readData, true, 'a new start joins the --read-data job');
  j.release(asAlice, plain.id);
  assert.equal(j.get(asAlice, reading.id).state, 'digesting');
  j.close();
});
