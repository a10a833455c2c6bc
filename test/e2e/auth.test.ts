import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { authHeaders } from '../../client/http/token.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { SESSION_HEADER, UPLOADS_PATH } from '../../core/protocol.ts';
import { addClient } from '../../server/tokens.ts';
import { aliceBobAdmin, assertReceived, createPair, recordingReporter } from './harness.ts';
import { SNAPFERRY_BIN } from './processes.ts';

const snapferry = (args: string[], env: Record<string, string> = {}) =>
  execa('node', [SNAPFERRY_BIN, ...args], { reject: false, timeout: 120_000, env: { SNAPFERRY_TOKEN: '', ...env } });

const TUS = { 'Tus-Resumable': '1.0.0' };
const MISSING = '0123456789abcdef0123456789abcdef';

async function tokensDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-auth-e2e-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Answer {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body, read field by field as a script would
  body: any;
  text: string;
}

async function call(url: string, method: string, token: string | null, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  const res = await fetch(url, { method, headers: { ...authHeaders(token), ...headers }, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, body: json, text };
}

/** A tus creation request as a client would send it, for an upload that then stays at offset 0. */
function creationHeaders(metadata: Record<string, string>): Record<string, string> {
  const b64 = (v: string) => Buffer.from(v).toString('base64');
  return { ...TUS, 'Upload-Defer-Length': '1', 'Upload-Metadata': Object.entries(metadata).map(([k, v]) => `${k} ${b64(v)}`).join(',') };
}

test('every endpoint, tus and unknown paths included, answers 401 without a valid token, and says how to get one', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const file = path.join(await tokensDir(t), 'tokens.json');
  await assert.rejects(pair.startServer({ tokensFile: file }), /tokens file .* does not exist; create it with `snapferry client add/);
  const { token } = await addClient(file, 'alice');
  const server = await pair.startServer({ tokensFile: file });
  const upload = `${server.url}${UPLOADS_PATH}/${MISSING}`;
  const requests: [string, string, Record<string, string>?][] = [
    ['GET', '/v1/status'], ['GET', '/v1/volumes'], ['GET', '/v1/volumes/home/snapshots'], ['GET', '/v1/transfers'],
    ['GET', `/v1/transfers/${MISSING}`], ['GET', `/v1/transfers/${MISSING}/frames`], ['POST', `/v1/transfers/${MISSING}/abort`],
    ['POST', `/v1/transfers/${MISSING}/rewind`], ['POST', `/v1/transfers/${MISSING}/release`], ['GET', '/v1/nowhere'],
    ['POST', `${UPLOADS_PATH}/`, creationHeaders({ volume: 'v' })], ['OPTIONS', `${UPLOADS_PATH}/`],
    ['PATCH', `${UPLOADS_PATH}/${MISSING}`, { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }],
    ['DELETE', `${UPLOADS_PATH}/${MISSING}`, TUS], ['OPTIONS', `${UPLOADS_PATH}/${MISSING}`],
  ];
  for (const [method, route, headers] of requests) {
    for (const wrong of [null, `${token}x`, 'Bearer']) {
      const extra: Record<string, string> = wrong === 'Bearer' ? { authorization: token } : {};
      const r = await call(`${server.url}${route}`, method, wrong === 'Bearer' ? null : wrong, { ...headers, ...extra });
      assert.equal(r.status, 401, `${method} ${route} with ${wrong}: ${r.text}`);
      assert.equal(r.body.error.code, 'unauthorized');
      assert.equal(r.body.error.retryable, false);
      assert.match(r.body.error.message, /snapferry client add NAME --tokens FILE.*Authorization: Bearer TOKEN.*--token-file/);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="snapferry"');
    }
  }
  const head = await call(upload, 'HEAD', null, TUS);
  assert.equal(head.status, 401);
  // The right token gets through to the same endpoints.
  assert.equal((await call(`${server.url}/v1/status`, 'GET', token)).status, 200);
  assert.equal((await call(upload, 'HEAD', token, TUS)).status, 404);
});

test("a client cannot see, resume, rewind, abort or read another client's things; an admin reads all and writes nothing", rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const { file, alice, bob, admin } = await aliceBobAdmin(t);
  const server = await pair.startServer({ tokensFile: file });
  const url = (route: string) => `${server.url}${route}`;
  const s1 = await pair.snapshot('s1');

  const s2 = await pair.snapshot('s2');

  // alice: one snapshot received in `home`, one upload (of another snapshot) left at offset 0 in `work`.
  const pushed = await push({ server: server.url, volume: 'home', snapshots: [s1], headers: authHeaders(alice), retries: 0 }, recordingReporter());
  const received = pushed.sent[0]!.transfer.id;
  const metadata = { volume: 'work', snapshot: 's2', uuid: (await btrfs.subvolumeShow(s2)).uuid, format: 'sfr1', chunkSize: '65536' };
  const created = await call(url(`${UPLOADS_PATH}/`), 'POST', alice, creationHeaders(metadata));
  assert.equal(created.status, 201, created.text);
  const open = created.headers.get('location')!.split('/').pop()!;
  const aliceSession = { ...TUS, [SESSION_HEADER]: 'alice-session' };

  // bob: nothing of alice's shows, and everything of hers answers exactly like something that does not exist.
  assert.deepEqual((await call(url('/v1/volumes'), 'GET', bob)).body, { client: 'bob', volumes: [] });
  assert.deepEqual((await call(url('/v1/volumes/home/snapshots'), 'GET', bob)).body.snapshots, []);
  assert.deepEqual((await call(url('/v1/transfers'), 'GET', bob)).body, { transfers: [] });
  const bobStatus = (await call(url('/v1/status'), 'GET', bob)).body;
  assert.deepEqual([bobStatus.snapshots, bobStatus.volumes, bobStatus.transfers], [0, 0, {}]);
  const patch = { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' };
  const probes: [string, (id: string) => string, Record<string, string>?, string?][] = [
    ['GET', (id) => `/v1/transfers/${id}`],
    ['GET', (id) => `/v1/transfers/${id}/frames`],
    ['POST', (id) => `/v1/transfers/${id}/abort`],
    ['POST', (id) => `/v1/transfers/${id}/rewind`, { 'content-type': 'application/json' }, '{"frames":0}'],
    ['POST', (id) => `/v1/transfers/${id}/release`],
    ['HEAD', (id) => `${UPLOADS_PATH}/${id}`, TUS],
    ['PATCH', (id) => `${UPLOADS_PATH}/${id}`, { ...TUS, ...patch }, 'x'.repeat(100)],
    ['DELETE', (id) => `${UPLOADS_PATH}/${id}`, TUS],
  ];
  for (const [method, route, headers, body] of probes) {
    for (const id of [open, received]) {
      const theirs = await call(url(route(id)), method, bob, headers, body);
      const missing = await call(url(route(MISSING)), method, bob, headers, body);
      assert.equal(theirs.status, 404, `${method} ${route(id)}: ${theirs.text}`);
      assert.equal(theirs.text.replaceAll(id, MISSING), missing.text, `${method} ${route(id)} tells the upload exists`);
      assert.equal(theirs.headers.get('content-type'), missing.headers.get('content-type'));
    }
  }
  // bob's HEAD and PATCH took no lease on alice's upload, and changed nothing of it.
  const resumed = await call(url(`${UPLOADS_PATH}/${open}`), 'HEAD', alice, aliceSession);
  assert.equal(resumed.status, 200, resumed.text);
  assert.equal(resumed.headers.get('upload-offset'), '0');
  assert.equal((await call(url(`/v1/transfers/${open}`), 'GET', alice)).body.state, 'uploading');
  assert.equal((await call(url(`/v1/transfers/${received}`), 'GET', alice)).body.state, 'received');

  // bob's namespace is his own: his volume `home` is not alice's, and his push goes full (none of hers is a parent).
  // (His own snapshot: the server keeps each snapshot UUID in one place, whoever pushes it.)
  const s3 = await pair.snapshot('s3');
  const bobPush = await push({ server: server.url, volume: 'home', snapshots: [s3], headers: authHeaders(bob), retries: 0 }, recordingReporter());
  assert.deepEqual(bobPush.sent.map((s) => [s.snapshot, s.parent]), [['s3', null]]);
  await assertReceived(s3, path.join(pair.root, 'volumes', 'bob', 'home', 's3'));
  await assertReceived(s1, path.join(pair.root, 'volumes', 'alice', 'home', 's1'));
  assert.deepEqual((await call(url('/v1/transfers'), 'GET', alice)).body.transfers.map((x: { id: string }) => x.id).sort(), [open, received].sort());

  // The admin reads everything, each item naming its client, and may narrow to one client.
  const volumes = (await call(url('/v1/volumes'), 'GET', admin)).body;
  assert.equal(volumes.client, '*');
  // alice's `work` is not one yet: her upload into it is at offset 0 (a volume is listed once it holds something).
  assert.deepEqual(volumes.volumes.map((v: { client: string; name: string }) => `${v.client}/${v.name}`), ['alice/home', 'bob/home']);
  const bobsOnly = (await call(url('/v1/volumes?client=bob'), 'GET', admin)).body;
  assert.deepEqual(bobsOnly.volumes.map((v: { client: string; name: string }) => `${v.client}/${v.name}`), ['bob/home']);
  const snaps = (await call(url('/v1/volumes/home/snapshots'), 'GET', admin)).body;
  assert.deepEqual(snaps.snapshots.map((s: { client: string; name: string }) => `${s.client}/${s.name}`), ['alice/s1', 'bob/s3']);
  const transfers = (await call(url('/v1/transfers'), 'GET', admin)).body.transfers;
  assert.deepEqual(transfers.map((x: { client: string }) => x.client).sort(), ['alice', 'alice', 'bob']);
  const one = await call(url(`/v1/transfers/${open}`), 'GET', admin);
  assert.equal(one.status, 200);
  assert.equal(one.body.client, 'alice');
  const frames = await call(url(`/v1/transfers/${received}/frames`), 'GET', admin);
  assert.equal(frames.status, 200, frames.text);
  assert.deepEqual(frames.body, { frames: [] });
  assert.equal((await call(url(`/v1/transfers/${MISSING}`), 'GET', admin)).status, 404);
  assert.equal((await call(url('/v1/status'), 'GET', admin)).body.snapshots, 2);
  assert.equal((await call(url('/v1/status'), 'GET', alice)).body.snapshots, 1);

  const writes: [string, string, Record<string, string>?, string?][] = [
    ['POST', `/v1/transfers/${open}/abort`],
    ['POST', `/v1/transfers/${open}/rewind`, { 'content-type': 'application/json' }, '{"frames":0}'],
    ['POST', `/v1/transfers/${open}/release`],
    ['POST', `${UPLOADS_PATH}/`, creationHeaders({ ...metadata, volume: 'other' })],
    ['HEAD', `${UPLOADS_PATH}/${open}`, TUS],
    ['PATCH', `${UPLOADS_PATH}/${open}`, { ...TUS, ...patch }, 'x'.repeat(100)],
    ['DELETE', `${UPLOADS_PATH}/${open}`, TUS],
    ['OPTIONS', `${UPLOADS_PATH}/`],
  ];
  for (const [method, route, headers, body] of writes) {
    const r = await call(url(route), method, admin, headers, body);
    assert.equal(r.status, 403, `${method} ${route}: ${r.text}`);
    if (method !== 'HEAD') {
      assert.equal(r.body.error.code, 'forbidden');
      assert.match(r.body.error.message, /admin token.*changes nothing/);
    }
  }
  assert.equal((await call(url(`/v1/transfers/${open}`), 'GET', alice)).body.state, 'uploading');
  assert.equal((await call(url('/v1/transfers'), 'GET', admin)).body.transfers.length, 3);

  // Her own upload, alice may abort.
  const aborted = await call(url(`/v1/transfers/${open}/abort`), 'POST', alice, { [SESSION_HEADER]: 'alice-session' });
  assert.equal(aborted.status, 200, aborted.text);
  assert.equal(aborted.body.state, 'aborted');
});

test('client add on a running server works at once, push and status take the token from a file or the environment', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const dir = await tokensDir(t);
  const file = path.join(dir, 'tokens.json');
  await addClient(file, 'ops', 'admin');
  const server = await pair.startServer({ tokensFile: file });
  const s1 = await pair.snapshot('s1');

  const added = await snapferry(['client', 'add', 'carol', '--tokens', file]);
  assert.equal(added.exitCode, 0, added.stderr);
  const token = added.stdout.trim();
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  assert.match(added.stderr, /--token-file FILE, or set SNAPFERRY_TOKEN/);
  assert.ok(!(await fs.readFile(file, 'utf8')).includes(token));
  const listed = await snapferry(['client', 'list', '--tokens', file, '--json']);
  assert.deepEqual(JSON.parse(listed.stdout).map((e: { name: string; role: string }) => [e.name, e.role]), [['ops', 'admin'], ['carol', 'client']]);
  const again = await snapferry(['client', 'add', 'carol', '--tokens', file]);
  assert.equal(again.exitCode, EXIT.usage);
  assert.match(again.stderr, /already has a client named carol/);
  assert.equal(again.stdout, '');

  const tokenFile = path.join(dir, 'carol.token');
  await fs.writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  const pushed = await snapferry(['push', '--server', server.url, '--volume', 'home', '--token-file', tokenFile, s1]);
  assert.equal(pushed.exitCode, EXIT.ok, pushed.stderr);
  await assertReceived(s1, path.join(pair.root, 'volumes', 'carol', 'home', 's1'));
  const status = await snapferry(['status', '--server', server.url, '--json'], { SNAPFERRY_TOKEN: token });
  assert.equal(status.exitCode, EXIT.ok, status.stderr);
  assert.deepEqual(JSON.parse(status.stdout).volumes.map((v: { name: string }) => v.name), ['home']);

  // A 401 is not worth retrying: the push stops at once and says what to do.
  const without = await snapferry(['push', '--server', server.url, '--volume', 'home', s1]);
  assert.equal(without.exitCode, EXIT.failed);
  assert.match(without.stderr, /needs a token.*--token-file FILE or SNAPFERRY_TOKEN/);

  const removed = await snapferry(['client', 'remove', 'carol', '--tokens', file]);
  assert.equal(removed.exitCode, 0, removed.stderr);
  const refused = await snapferry(['status', '--server', server.url, '--token-file', tokenFile]);
  assert.equal(refused.exitCode, EXIT.failed);
  assert.match(refused.stderr, /token is not known to the server/);
});

test('serve is secure by default: it needs --tokens, and --no-auth only on loopback and not behind a proxy', async (t) => {
  const dir = await tokensDir(t);
  const cases: [string[], RegExp][] = [
    [[], /serve needs --tokens FILE/],
    [['--no-auth', '--listen', '0.0.0.0:0'], /only allowed on a loopback address.*not 0\.0\.0\.0/],
    [['--no-auth', '--listen', '[::]:0'], /only allowed on a loopback address/],
    [['--no-auth', '--behind-proxy'], /--behind-proxy/],
    [['--no-auth', '--tokens', path.join(dir, 'tokens.json')], /not both/],
  ];
  for (const [args, message] of cases) {
    const r = await snapferry(['serve', '--root', dir, ...args]);
    assert.equal(r.exitCode, EXIT.usage, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test("another client's upload id smuggled into a tus URL (query string, extra or encoded slash, trailing segments) is a missing upload, and nothing of it changes", rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const { file, alice, bob } = await aliceBobAdmin(t);
  const server = await pair.startServer({ tokensFile: file });
  const url = (route: string) => `${server.url}${route}`;
  const s1 = await pair.snapshot('s1');
  const uuid = (await btrfs.subvolumeShow(s1)).uuid;
  const create = async (token: string, volume: string) => {
    const r = await call(url(`${UPLOADS_PATH}/`), 'POST', token, creationHeaders({ volume, snapshot: 's1', uuid, format: 'sfr1', chunkSize: '65536' }));
    assert.equal(r.status, 201, r.text);
    return r.headers.get('location')!.split('/').pop()!;
  };
  const bobs = await create(bob, 'home');
  const alices = await create(alice, 'home');
  // What any request of Alice's must leave exactly as it is: Bob's spool (a PATCH would add to it, a DELETE remove it).
  const spool = path.join(pair.root, 'spool', bobs);
  const before = { spool: await fs.readFile(spool), transfer: (await call(url(`/v1/transfers/${bobs}`), 'GET', bob)).body };

  const patch = { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' };
  const shapes: ((id: string) => string)[] = [
    (id) => `${UPLOADS_PATH}?x=/${id}`,
    (id) => `${UPLOADS_PATH}/?x=/${id}`,
    (id) => `${UPLOADS_PATH}/${id}/`,
    (id) => `${UPLOADS_PATH}/${alices}/${id}`,
    (id) => `${UPLOADS_PATH}/x%2F${id}`,
    (id) => `${UPLOADS_PATH}/${alices}%2F..%2F${id}`,
    (id) => `${UPLOADS_PATH}/${id}`,
  ];
  for (const shape of shapes) {
    for (const [method, headers, body] of [['HEAD', TUS], ['PATCH', patch, 'x'.repeat(100)], ['DELETE', TUS], ['GET', TUS]] as const) {
      const theirs = await call(url(shape(bobs)), method, alice, headers, body);
      const missing = await call(url(shape(MISSING)), method, alice, headers, body);
      assert.ok([404, 405].includes(theirs.status), `${method} ${shape(bobs)}: ${theirs.status} ${theirs.text}`);
      // Answered exactly as for an id that does not exist: nothing tells that Bob's does.
      assert.equal(theirs.status, missing.status, `${method} ${shape(bobs)}`);
      assert.equal(theirs.text.replaceAll(bobs, MISSING), missing.text, `${method} ${shape(bobs)} tells of Bob's upload`);
    }
  }
  // Alice's own upload named with Bob's id in its query string: only hers is touched (her HEAD answers her offset).
  const own = await call(url(`${UPLOADS_PATH}/${alices}?x=/${bobs}`), 'HEAD', alice, TUS);
  assert.equal(own.status, 200, own.text);
  assert.deepEqual(await fs.readFile(spool), before.spool, "Bob's spool is untouched");
  assert.deepEqual((await call(url(`/v1/transfers/${bobs}`), 'GET', bob)).body, before.transfer, "Bob's transfer is untouched");
  assert.equal((await call(url(`${UPLOADS_PATH}/${bobs}`), 'HEAD', bob, TUS)).status, 200, 'Bob still reaches his own upload');
});
